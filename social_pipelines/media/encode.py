"""Encoding a sized image under a spec's byte cap: PNG when alpha is kept, else JPEG with
the highest quality that fits.

The cap is never exceeded: JPEG quality is searched (binary, between the spec's minimum
and maximum), and when even the minimum is too big the image shrinks by steps and the
search runs again. Nothing but pixels is written: `info` is emptied before saving, since
Pillow's JPEG and PNG writers copy a comment and an ICC profile from it on their own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from social_pipelines.media.spec import JPEG, PNG, MediaSpec, OutputType
from social_pipelines.media.stats import RenderStats

# optimize=True (a second pass for Huffman tables) saves a few percent of bytes for about
# a fifth more encode time (bench/resize.py); the cap search already trades quality for
# bytes, so the pass is not worth it. Baseline (not progressive): every target takes it.
OPTIMIZE = False
PROGRESSIVE = False
# Level 1: a 2000x2000 RGBA photo took 1.3 s at level 6 (bench/resize.py), for a file
# that is often over the cap and replaced by a JPEG anyway.
PNG_COMPRESS_LEVEL = 1
DOWNSCALE_STEP = 0.85


@dataclass(frozen=True)
class Encoded:
    data: bytes
    mime_type: OutputType
    width: int
    height: int
    quality: int | None  # the JPEG quality chosen; None for PNG


def encode(image: Image.Image, spec: MediaSpec, stats: RenderStats) -> Encoded:
    """`image` is RGB or RGBA (real alpha) at the planned size."""
    image.info = {}
    if image.mode == "RGBA":
        if spec.png_allowed:
            data = _save(image, "PNG", stats, compress_level=PNG_COMPRESS_LEVEL)
            if len(data) <= spec.max_bytes:
                return Encoded(data, PNG, image.width, image.height, None)
            # Too big as PNG: a JPEG on the background keeps the full size, which matters
            # more on a social feed than transparency few clients show.
        image = composite(image, spec.background)
    while True:
        found = _search_quality(image, spec, stats)
        if found is not None:
            quality, data = found
            return Encoded(data, JPEG, image.width, image.height, quality)
        smaller = (
            max(1, int(image.width * DOWNSCALE_STEP)),
            max(1, int(image.height * DOWNSCALE_STEP)),
        )
        if smaller == image.size:  # pragma: no cover - a 1x1 JPEG is far below any cap
            raise ValueError(f"cannot fit {spec.name}'s {spec.max_bytes} bytes")
        image = image.resize(smaller, Image.Resampling.LANCZOS)


def composite(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """RGBA onto an opaque background: `convert("RGB")` would drop alpha and show what
    the transparent pixels happen to hold (often black)."""
    base = Image.new("RGB", image.size, background)
    base.paste(image, (0, 0), image)
    return base


def _search_quality(
    image: Image.Image, spec: MediaSpec, stats: RenderStats
) -> tuple[int, bytes] | None:
    """The highest quality in [min, max] whose JPEG fits, or None when none does. The
    maximum is tried first: most targets fit at once, one encode."""
    cap = spec.max_bytes
    low, high = spec.min_quality, spec.max_quality
    data = _save(image, "JPEG", stats, quality=high)
    if len(data) <= cap:
        return high, data
    if low == high:
        return None
    best_data = _save(image, "JPEG", stats, quality=low)
    if len(best_data) > cap:
        return None
    best = low
    low, high = low + 1, high - 1
    while low <= high:
        middle = (low + high) // 2
        data = _save(image, "JPEG", stats, quality=middle)
        if len(data) <= cap:
            best, best_data, low = middle, data, middle + 1
        else:
            high = middle - 1
    return best, best_data


def _save(image: Image.Image, kind: str, stats: RenderStats, **options: int) -> bytes:
    buffer = io.BytesIO()
    if kind == "JPEG":
        image.save(buffer, "JPEG", optimize=OPTIMIZE, progressive=PROGRESSIVE, **options)
    else:
        image.save(buffer, "PNG", **options)
    stats.encodes += 1
    return buffer.getvalue()
