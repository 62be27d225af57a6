"""Renderings kept on disk by what they are made of, so a re-run or a retried step renders
nothing again.

The key is the source's content hash and the spec's fingerprint (which includes the
renderer version): the same bytes rendered for the same spec always give the same key,
wherever the image was read from. One file per rendering, a JSON header line then the
image bytes, written to a temporary file and moved into place with `os.replace`, so a
reader sees a whole entry or none, even with several processes at once.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from social_pipelines.media.spec import JPEG, PNG, MediaSpec, OutputType

_MIME_TYPES: dict[str, OutputType] = {JPEG: JPEG, PNG: PNG}


@dataclass(frozen=True)
class CachedRendering:
    data: bytes
    mime_type: OutputType
    width: int
    height: int
    quality: int | None


class RenderCache:
    """A directory of renderings keyed by source hash and spec fingerprint."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, source_hash: str, spec: MediaSpec) -> Path:
        return self.directory / f"{source_hash}-{spec.fingerprint}.render"

    def get(self, source_hash: str, spec: MediaSpec) -> CachedRendering | None:
        """The stored rendering, or None when absent or unreadable (then it is rendered
        again and overwritten: a damaged entry must not fail a post)."""
        try:
            raw = self.path(source_hash, spec).read_bytes()
            header, data = raw.split(b"\n", 1)
            meta = json.loads(header)
            if meta.get("bytes") != len(data) or meta.get("mime_type") not in _MIME_TYPES:
                return None
            return CachedRendering(
                data=data,
                mime_type=_MIME_TYPES[meta["mime_type"]],
                width=int(meta["width"]),
                height=int(meta["height"]),
                quality=None if meta.get("quality") is None else int(meta["quality"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, source_hash: str, spec: MediaSpec, rendering: CachedRendering) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = {
            "mime_type": rendering.mime_type,
            "width": rendering.width,
            "height": rendering.height,
            "quality": rendering.quality,
            "bytes": len(rendering.data),
            "spec": spec.name,
        }
        header = json.dumps(meta, sort_keys=True).encode("utf-8")
        target = self.path(source_hash, spec)
        handle, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(header + b"\n" + rendering.data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
