"""Where a spec's output comes from in the source and what size it is (mode `fit`).

Pure arithmetic, no Pillow: the target size is computed from the source's full
(oriented) size so it never depends on how far JPEG draft mode reduced the decode, and the
crop is kept as fractions of the source so it applies to the decoded image at any scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from social_pipelines.media.spec import MediaSpec


@dataclass(frozen=True)
class Plan:
    """The output size and the central region of the source (fractions 0..1) it shows."""

    width: int
    height: int
    region: tuple[float, float, float, float]

    def box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The region in pixels of an image `width` x `height` (the decoded source)."""
        left, top, right, bottom = self.region
        return (left * width, top * height, right * width, bottom * height)

    def needs(self) -> tuple[float, float]:
        """The smallest full-source size whose region still has the output's pixels."""
        left, top, right, bottom = self.region
        return (self.width / (right - left), self.height / (bottom - top))


def plan(spec: MediaSpec, width: int, height: int) -> Plan:
    """Shrink (never grow) to fit every limit; crop centrally to the nearest allowed
    aspect first when the source's is outside `[min_aspect, max_aspect]`."""
    aspect = width / height
    allowed = aspect
    if spec.min_aspect is not None and allowed < spec.min_aspect:
        allowed = spec.min_aspect
    if spec.max_aspect is not None and allowed > spec.max_aspect:
        allowed = spec.max_aspect
    # The region shown, in source pixels (floats), at the allowed aspect.
    if allowed > aspect:  # too tall: keep the width, crop height
        region_w, region_h = float(width), width / allowed
    elif allowed < aspect:  # too wide: keep the height, crop width
        region_w, region_h = height * allowed, float(height)
    else:
        region_w, region_h = float(width), float(height)

    scale = 1.0
    if spec.max_width is not None:
        scale = min(scale, spec.max_width / region_w)
    if spec.max_height is not None:
        scale = min(scale, spec.max_height / region_h)
    if spec.max_long_edge is not None:
        scale = min(scale, spec.max_long_edge / max(region_w, region_h))
    if spec.max_pixels is not None:
        scale = min(scale, math.sqrt(spec.max_pixels / (region_w * region_h)))
    out_w, out_h = _fit_integers(spec, region_w * scale, region_h * scale, (width, height))

    # The crop matches the integer output's aspect exactly, so nothing is stretched.
    out_aspect = out_w / out_h
    if out_aspect > aspect:
        crop_h = (width / out_aspect) / height
        region = (0.0, (1 - crop_h) / 2, 1.0, (1 + crop_h) / 2)
    else:
        crop_w = (height * out_aspect) / width
        region = ((1 - crop_w) / 2, 0.0, (1 + crop_w) / 2, 1.0)
    if out_w == width and out_h == height:
        region = (0.0, 0.0, 1.0, 1.0)
    return Plan(out_w, out_h, region)


def _fit_integers(
    spec: MediaSpec, width: float, height: float, source: tuple[int, int]
) -> tuple[int, int]:
    """Round to pixels, take off what rounding put over a limit, then mend the ratio
    (1080x566 rather than 1080x565 for a 3:1 source at 1.91:1)."""
    out_w, out_h = max(1, round(width)), max(1, round(height))
    if spec.max_width is not None:
        out_w = min(out_w, spec.max_width)
    if spec.max_height is not None:
        out_h = min(out_h, spec.max_height)
    if spec.max_long_edge is not None:
        out_w, out_h = min(out_w, spec.max_long_edge), min(out_h, spec.max_long_edge)
    if spec.max_pixels is not None:
        while out_w * out_h > spec.max_pixels:
            if out_w >= out_h:
                out_w -= 1
            else:
                out_h -= 1
    if _aspect_ok(spec, out_w, out_h):
        return out_w, out_h
    # Rounding put the ratio a hair outside the range. Mend it with one pixel more on the
    # short side when every limit allows it, else one pixel less on the long side; when
    # neither gives an exact fit (a few-pixel source at a fixed ratio like 540:283), keep
    # the rounded size, which is within half a pixel of an allowed ratio.
    allowed = min(max(out_w / out_h, spec.min_aspect or 0.0), spec.max_aspect or math.inf)
    if allowed < out_w / out_h:
        candidates = [
            (out_w, math.ceil(out_w / allowed - 1e-9)),
            (math.floor(out_h * allowed + 1e-9), out_h),
        ]
    else:
        candidates = [
            (math.ceil(out_h * allowed - 1e-9), out_h),
            (out_w, math.floor(out_w / allowed + 1e-9)),
        ]
    for width_, height_ in candidates:
        if width_ >= 1 and height_ >= 1 and _within(spec, width_, height_, source):
            return width_, height_
    return out_w, out_h


def _aspect_ok(spec: MediaSpec, width: int, height: int) -> bool:
    aspect = width / height
    if spec.min_aspect is not None and aspect < spec.min_aspect - 1e-9:
        return False
    return not (spec.max_aspect is not None and aspect > spec.max_aspect + 1e-9)


def _within(spec: MediaSpec, width: int, height: int, source: tuple[int, int]) -> bool:
    if width > source[0] or height > source[1]:
        return False
    if spec.max_width is not None and width > spec.max_width:
        return False
    if spec.max_height is not None and height > spec.max_height:
        return False
    if spec.max_long_edge is not None and max(width, height) > spec.max_long_edge:
        return False
    if spec.max_pixels is not None and width * height > spec.max_pixels:
        return False
    return _aspect_ok(spec, width, height)
