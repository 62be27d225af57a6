"""What one platform accepts for an image, as one value the renderer and the cache share.

A spec is frozen and serialised canonically because its fingerprint is half of a render's
cache key: two specs that render the same bytes must have the same fingerprint, and any
change that could change a byte of the output (a field, or the renderer itself, through
`RENDERER_VERSION`) must change it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Bump when the renderer's output for an unchanged spec changes (resampling, encoder
# settings, colour handling): every cached rendering is then rendered again.
RENDERER_VERSION = "1"

JPEG = "image/jpeg"
PNG = "image/png"
OutputType = Literal["image/jpeg", "image/png"]


class MediaSpec(BaseModel):
    """One platform's (and variant's) image target.

    Mode `fit` never letterboxes: the image shrinks to fit every size limit (never grows),
    and an aspect ratio outside `[min_aspect, max_aspect]` (width / height) is cropped
    centrally to the nearest allowed ratio first.

    JPEG is always an allowed output; PNG is used only when the image has real
    transparency and `png_allowed` is set, else alpha is composited onto `background`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str = Field(min_length=1)
    variant: str | None = None
    max_width: int | None = Field(default=None, ge=1)
    max_height: int | None = Field(default=None, ge=1)
    max_long_edge: int | None = Field(default=None, ge=1)
    max_pixels: int | None = Field(default=None, ge=1)
    min_aspect: float | None = Field(default=None, gt=0)
    max_aspect: float | None = Field(default=None, gt=0)
    mode: Literal["fit"] = "fit"
    max_bytes: int = Field(ge=1024)
    png_allowed: bool = False
    background: tuple[int, int, int] = (255, 255, 255)
    min_quality: int = Field(default=60, ge=1, le=95)
    max_quality: int = Field(default=85, ge=1, le=95)
    allow_draft: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> MediaSpec:
        if self.min_aspect and self.max_aspect and self.min_aspect > self.max_aspect:
            raise ValueError(f"min_aspect {self.min_aspect} > max_aspect {self.max_aspect}")
        if self.min_quality > self.max_quality:
            raise ValueError(f"min_quality {self.min_quality} > max_quality {self.max_quality}")
        if any(not 0 <= channel <= 255 for channel in self.background):
            raise ValueError(f"background {self.background} is not an RGB colour (0..255)")
        return self

    @property
    def name(self) -> str:
        """`platform` or `platform-variant`: how previews and logs name the target."""
        return f"{self.platform}-{self.variant}" if self.variant else self.platform

    @property
    def output_types(self) -> tuple[OutputType, ...]:
        return (JPEG, PNG) if self.png_allowed else (JPEG,)

    def canonical_json(self) -> str:
        """Every field, keys sorted, no whitespace: the same spec gives the same text on any
        machine and Python version (floats are written by `json`'s repr, which round-trips)."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        """sha256 of the canonical JSON and the renderer version: the spec's cache key half."""
        text = f"{RENDERER_VERSION}\n{self.canonical_json()}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
