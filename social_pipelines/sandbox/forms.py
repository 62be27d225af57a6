"""Request parameters the way Rails reads them: query string, then form, multipart or JSON.

Multipart bodies go through Starlette's form parser (python-multipart); a part is an upload
when it has a filename. Parameters keep Rails' quirks that clients trip over: `media_ids[]`
is a list, a bare `media_ids` form field is ignored, and booleans are true unless they spell
false.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
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
        await _read_multipart(request, content_type, params)
    else:
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            params.add(name, value)
    return params


async def _read_multipart(request: Request, content_type: str, params: Params) -> None:
    """Fields as parameters, parts with a filename as uploads; unreadable -> `BadRequest`.

    The body is already read and size-checked, so Starlette parses it from memory, and a
    field may be as large as the body (Starlette's own cap of 1 MB per field is not Rails').
    """
    _, options = parse_options_header(content_type)
    if not options.get(b"boundary"):  # checked here so that this answer keeps its words
        raise BadRequest("multipart body without a boundary")
    try:
        async with request.form(max_part_size=MAX_BODY_BYTES) as form:
            for name, value in form.multi_items():
                if isinstance(value, UploadFile):
                    params.files[name] = await _upload(value)
                else:
                    params.add(name, value)
    except HTTPException as error:  # Starlette's answer to a body it cannot parse
        raise BadRequest(error.detail) from error


async def _upload(file: UploadFile) -> Upload:
    """The bytes, read now: Starlette closes the form's spooled files with the form."""
    return Upload(file.filename, file.content_type, await file.read())
