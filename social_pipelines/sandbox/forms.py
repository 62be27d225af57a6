"""Request parameters the way Rails reads them: query string, then form, multipart or JSON.

Starlette's own form parser needs python-multipart, which the project does not depend on, so
multipart bodies are split here with the standard library. Parameters keep Rails' quirks
that clients trip over: `media_ids[]` is a list, a bare `media_ids` form field is ignored,
and booleans are true unless they spell false.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_BODY_BYTES = 100 * 1024 * 1024
# ActiveModel::Type::Boolean::FALSE_VALUES, as strings.
FALSE_VALUES = frozenset({"0", "f", "F", "false", "FALSE", "False", "off", "OFF"})


class BadRequest(ValueError):
    """The body cannot be read at all (malformed JSON or multipart)."""


@dataclass(frozen=True)
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass
class Params:
    """Scalars by name, lists by name (`key[]` form fields, JSON arrays), files by name."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def text(self, name: str, default: str = "") -> str:
        value = self.values.get(name)
        return default if value is None else value

    def flag(self, name: str) -> bool | None:
        """Rails boolean casting: absent or empty is None, FALSE_VALUES are False."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        return value not in FALSE_VALUES

    def add(self, name: str, value: object) -> None:
        if name.endswith("[]"):
            self.lists.setdefault(name[:-2], []).append(_scalar(value))
        elif isinstance(value, list):
            self.lists[name] = [_scalar(item) for item in value]
        elif isinstance(value, dict):
            return  # nested hashes (poll, media_attributes) are not supported
        else:
            self.values[name] = _scalar(value)


def _scalar(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def read_params(request: Request) -> Params:
    params = Params()
    for name, value in request.query_params.multi_items():
        params.add(name, value)
    if request.method in ("GET", "HEAD"):
        return params
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest("Request entity too large")
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body:
        return params
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            document = json.loads(body)
        except ValueError as error:
            raise BadRequest(f"Invalid JSON: {error}") from error
        if isinstance(document, dict):
            for name, value in document.items():
                params.add(str(name), value)
    elif media_type == "multipart/form-data":
        _read_multipart(body, content_type, params)
    else:
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            params.add(name, value)
    return params


def _read_multipart(body: bytes, content_type: str, params: Params) -> None:
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise BadRequest("multipart body without a boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(delimiter)
    # chunks[0] is the preamble; the part after the closing delimiter starts with "--".
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n").removesuffix(b"\r\n")
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            continue
        part = Message()
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                part[name.strip()] = value.strip()
        field_name = part.get_param("name", header="content-disposition")
        if not isinstance(field_name, str):
            continue
        filename = part.get_param("filename", header="content-disposition")
        declared = part.get("content-type")
        if isinstance(filename, str) or (declared and not declared.startswith("text/plain")):
            name = filename if isinstance(filename, str) else None
            params.files[field_name] = Upload(name, declared, data)
        else:
            params.add(field_name, data.decode("utf-8", "replace"))
