"""Property-based: random images never crash the renderer and always fit the spec; random
damage to a valid file either renders within spec or is a `MediaError` naming the image."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from social_pipelines.errors import MediaError
from social_pipelines.media import ImageSource, MediaSpec, platforms, render, spec_for, variants
from social_pipelines_tests.media.images import ORIENTATION, encode, noisy_photo, quadrants

SPECS = [spec_for(p, v) for p in platforms() for v in variants(p)]
TIGHT = MediaSpec(platform="tight", max_width=120, max_height=90, max_bytes=2048, min_quality=20)
ALL_SPECS = [*SPECS, TIGHT]
MODES = ["RGB", "RGBA", "L", "LA", "P", "PT", "I;16", "I", "1", "CMYK", "F"]
JPEG_MODES = {"RGB", "L", "CMYK"}
PROPERTY_SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def make_image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    base = noisy_photo(width, height, sigma=10 + seed % 80)
    if mode == "PT":
        image = base.convert("P")
        image.info["transparency"] = seed % 256
        return image
    if mode in ("I;16", "I"):
        return (
            base.convert("L").point(lambda v: v * 257).convert("I")
            if mode == "I"
            else base.convert("I;16")
        )
    if mode == "F":
        return base.convert("F")
    image = base.convert(mode)
    if mode in ("RGBA", "LA"):
        alpha = Image.linear_gradient("L").resize((width, height))
        image.putalpha(alpha)
    return image


def fits(rendering, spec: MediaSpec) -> None:
    assert len(rendering.data) <= spec.max_bytes
    out = Image.open(io.BytesIO(rendering.data))
    out.load()
    assert out.size == (rendering.width, rendering.height)
    w, h = out.size
    for limit, value in (
        (spec.max_width, w),
        (spec.max_height, h),
        (spec.max_long_edge, max(w, h)),
    ):
        assert limit is None or value <= limit
    assert spec.max_pixels is None or w * h <= spec.max_pixels
    # Whole pixels cannot hit every ratio (540:283 from a 65x34 source): half a pixel slack.
    if spec.min_aspect is not None:
        assert (w + 0.5) / (h - 0.5 if h > 1 else 0.5) >= spec.min_aspect - 1e-9 or min(w, h) == 1
    if spec.max_aspect is not None:
        assert (w - 0.5 if w > 1 else 0.5) / (h + 0.5) <= spec.max_aspect + 1e-9 or min(w, h) == 1
    assert rendering.mime_type in spec.output_types
    assert "exif" not in out.info and "icc_profile" not in out.info


@PROPERTY_SETTINGS
@given(
    mode=st.sampled_from(MODES),
    width=st.integers(1, 240),
    height=st.integers(1, 240),
    orientation=st.integers(1, 8),
    as_jpeg=st.booleans(),
    seed=st.integers(0, 10_000),
    spec=st.sampled_from(ALL_SPECS),
)
def test_random_images_render_within_spec(mode, width, height, orientation, as_jpeg, seed, spec):
    image = make_image(mode, width, height, seed)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    if as_jpeg and mode in JPEG_MODES:
        data = encode(image, "JPEG", quality=90, exif=exif.tobytes())
    elif mode in ("I", "F", "CMYK"):  # no PNG of these: a TIFF (with its orientation tag)
        data = encode(image, "TIFF", exif=exif.tobytes())
    else:
        options = {"transparency": image.info["transparency"]} if mode == "PT" else {}
        data = encode(image, "PNG", exif=exif.tobytes(), **options)
    rendering = render(data, spec)
    fits(rendering, spec)
    if orientation in (5, 6, 7, 8) and spec.min_aspect is None and spec is not TIGHT:
        assert (rendering.width >= rendering.height) == (height >= width) or width == height


VALID = {
    "photo.jpg": encode(quadrants(96, 64), "JPEG", quality=90),
    "photo.png": encode(quadrants(96, 64).convert("RGBA"), "PNG"),
}


@PROPERTY_SETTINGS
@given(
    name=st.sampled_from(sorted(VALID)),
    cut=st.one_of(st.none(), st.integers(0, 4000)),
    flips=st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 255)), max_size=8),
    spec=st.sampled_from(ALL_SPECS),
)
def test_damaged_files_render_or_raise_media_error(name, cut, flips, spec):
    data = bytearray(VALID[name])
    for position, value in flips:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        rendering = render(ImageSource(bytes(data), location=name, post_id="p1"), spec)
    except MediaError as error:
        assert error.image == name and error.post_id == "p1"
        assert str(error).startswith(f"post 'p1', image '{name}': ")
    else:
        fits(rendering, spec)
