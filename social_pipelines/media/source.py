"""Reading an image's bytes from where a post names it: a local path or an `https://` URL.

Only bytes are read here, never decoded (that is `decode.py`): every byte a render uses
comes through one of two doors, each with a byte cap, and a URL fetch has a time limit.
Plain `http://` is refused (a network in between could swap the image), and so is every
other scheme (`file://`, `ftp://`, `data:`): a post names a file or an https URL.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from social_pipelines.errors import MediaError

DEFAULT_MAX_BYTES = 50_000_000
DEFAULT_TIMEOUT = 20.0
MAX_REDIRECTS = 5


@dataclass(frozen=True)
class ImageSource:
    """An image's bytes as read, where they came from, and their sha256 (`content_hash`),
    which names them in the render cache whatever their location."""

    data: bytes = field(repr=False)
    location: str = "<bytes>"
    post_id: str | None = None
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_hash", hashlib.sha256(self.data).hexdigest())

    def error(self, reason: str, *, transient: bool = False) -> MediaError:
        """A `MediaError` naming this image (and its post)."""
        return MediaError(reason, image=self.location, post_id=self.post_id, transient=transient)

    @property
    def stem(self) -> str:
        """A file name stem for previews: the last path segment without its suffix."""
        path = urlsplit(self.location).path if "://" in self.location else self.location
        return Path(path).stem or "image"


def load_source(
    location: str,
    *,
    base_dir: Path | None = None,
    post_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ImageSource:
    """The bytes of a local file (relative to `base_dir` when given) or an https URL.

    Every refusal is a `MediaError` naming the image and the post: an unknown scheme, a
    missing or empty file, more than `max_bytes`, a fetch over `timeout` seconds in total.
    """

    def refuse(reason: str, *, transient: bool = False) -> MediaError:
        return MediaError(reason, image=location, post_id=post_id, transient=transient)

    scheme = urlsplit(location).scheme.lower()
    if scheme == "https":
        data = _fetch(location, timeout=timeout, max_bytes=max_bytes, refuse=refuse)
    elif scheme == "":
        data = _read_file(location, base_dir=base_dir, max_bytes=max_bytes, refuse=refuse)
    else:
        raise refuse(f"scheme '{scheme}:' refused: only a local path or an https:// URL")
    if not data:
        raise refuse("empty (0 bytes)")
    return ImageSource(data=data, location=location, post_id=post_id)


class _Refuse(Protocol):
    """The callable that builds this load's `MediaError` (typed for the helpers below)."""

    def __call__(self, reason: str, *, transient: bool = False) -> MediaError: ...


def _read_file(location: str, *, base_dir: Path | None, max_bytes: int, refuse: _Refuse) -> bytes:
    path = Path(location)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    try:
        with path.open("rb") as file:
            # One byte more than allowed tells "too large" from "exactly the cap".
            data = file.read(max_bytes + 1)
    except FileNotFoundError:
        raise refuse(f"file not found ({path})") from None
    except IsADirectoryError:
        raise refuse(f"a directory, not a file ({path})") from None
    except OSError as error:
        raise refuse(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > max_bytes:
        raise refuse(f"larger than {max_bytes:,} bytes")
    return data


def _fetch(location: str, *, timeout: float, max_bytes: int, refuse: _Refuse) -> bytes:
    """GET with redirects followed by hand (each must stay https), streamed with a byte
    cap. The time limit is total, checked between chunks; httpx's own timeouts (set to what
    is left of it when each request starts) bound a single stalled wait, so a server that
    trickles cannot hold a run for more than about twice the limit."""
    deadline = time.monotonic() + timeout
    url = location
    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                left = max(deadline - time.monotonic(), 0.001)
                with client.stream("GET", url, timeout=left) as response:
                    if response.is_redirect and response.next_request is not None:
                        url = str(response.next_request.url)
                        if response.next_request.url.scheme != "https":
                            raise refuse(f"redirected to a non-https URL ({url})")
                        continue
                    if response.status_code >= 400:
                        raise refuse(
                            f"fetch answered HTTP {response.status_code}",
                            transient=response.status_code >= 500 or response.status_code == 429,
                        )
                    return _read_body(response, deadline, timeout, max_bytes, refuse)
            except httpx.TimeoutException:
                raise refuse(f"fetch took longer than {timeout:g} s", transient=True) from None
            except httpx.HTTPError as error:
                raise refuse(f"fetch failed: {type(error).__name__}", transient=True) from None
    raise refuse(f"more than {MAX_REDIRECTS} redirects")


def _read_body(
    response: httpx.Response, deadline: float, timeout: float, max_bytes: int, refuse: _Refuse
) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise refuse(f"larger than {max_bytes:,} bytes (Content-Length {int(declared):,})")
    chunks: list[bytes] = []
    size = 0
    # Decoded bytes are counted: a gzip-encoded body cannot inflate past the cap.
    for chunk in response.iter_bytes():  # as they arrive: a chunk size would buffer
        size += len(chunk)
        if size > max_bytes:
            raise refuse(f"larger than {max_bytes:,} bytes (stopped reading)")
        if time.monotonic() > deadline:
            raise refuse(f"fetch took longer than {timeout:g} s", transient=True)
        chunks.append(chunk)
    return b"".join(chunks)
