"""The renderer on generated images: orientation, modes, alpha, colour, caps, metadata."""

from __future__ import annotations

import io
import logging
import struct

import pytest
from PIL import Image, ImageCms

from social_pipelines.media import (
    ImageSource,
    MediaSpec,
    RenderStats,
    render,
    render_for_targets,
    spec_for,
)
from social_pipelines_tests.media.images import (
    GPS_IFD,
    close,
    encode,
    jpeg_with_exif,
    noisy_photo,
    quadrants,
)

# No resizing, no crop: what comes out is the source, upright and converted.
AS_IS = MediaSpec(platform="test", max_long_edge=4096, max_bytes=5_000_000, png_allowed=True)
JPEG_ONLY = AS_IS.model_copy(update={"png_allowed": False})
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def output(rendering) -> Image.Image:
    image = Image.open(io.BytesIO(rendering.data))
    image.load()
    return image


def corners(image: Image.Image) -> dict[str, tuple[int, ...]]:
    w, h = image.size
    rgb = image.convert("RGB")
    return {
        "top_left": rgb.getpixel((w // 4, h // 4)),
        "top_right": rgb.getpixel((3 * w // 4, h // 4)),
        "bottom_left": rgb.getpixel((w // 4, 3 * h // 4)),
        "bottom_right": rgb.getpixel((3 * w // 4, 3 * h // 4)),
    }


def test_upright_source_keeps_its_layout():
    result = render(jpeg_with_exif(quadrants()), JPEG_ONLY)
    assert (result.width, result.height) == (64, 48)
    seen = corners(output(result))
    assert close(seen["top_left"], RED) and close(seen["bottom_right"], WHITE)


@pytest.mark.parametrize(
    ("orientation", "where_red", "where_green"),
    [(6, "top_right", "bottom_right"), (8, "bottom_left", "top_left")],
)
def test_exif_orientation_is_applied(orientation, where_red, where_green):
    result = render(jpeg_with_exif(quadrants(), orientation=orientation), JPEG_ONLY)
    image = output(result)
    assert image.size == (48, 64) == (result.width, result.height)  # swapped
    seen = corners(image)
    assert close(seen[where_red], RED), seen
    assert close(seen[where_green], GREEN), seen
    assert image.getexif().get(0x0112) is None


def half_transparent(mode: str = "RGBA") -> Image.Image:
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))  # transparent black on the left
    image.paste((255, 0, 0, 255), (20, 0, 40, 20))
    return image.convert(mode) if mode != "RGBA" else image


def test_rgba_is_composited_on_white_not_black():
    result = render(encode(half_transparent()), spec_for("instagram"))
    assert result.mime_type == "image/jpeg"
    image = output(result).convert("RGB")
    assert close(image.getpixel((2, 10)), WHITE, 10)
    assert close(image.getpixel((image.width - 3, 10)), RED)


def test_background_comes_from_the_spec():
    spec = JPEG_ONLY.model_copy(update={"background": (0, 0, 255)})
    image = output(render(encode(half_transparent()), spec)).convert("RGB")
    assert close(image.getpixel((2, 10)), BLUE, 10)


def test_png_kept_with_alpha_where_the_platform_takes_it():
    result = render(encode(half_transparent()), spec_for("x"))
    assert result.mime_type == "image/png" and result.quality is None
    image = output(result)
    assert image.mode == "RGBA"
    assert image.getpixel((2, 10))[3] == 0
    assert image.getpixel((38, 10)) == (255, 0, 0, 255)


def test_opaque_rgba_becomes_jpeg():
    opaque = Image.new("RGBA", (20, 20), (10, 200, 10, 255))
    assert render(encode(opaque), spec_for("x")).mime_type == "image/jpeg"


def test_palette_with_transparency():
    image = Image.new("P", (20, 10), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    image.paste(1, (10, 0, 20, 10))
    data = encode(image, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    out = output(render(data, JPEG_ONLY)).convert("RGB")
    assert close(out.getpixel((2, 5)), WHITE, 10)
    assert close(out.getpixel((17, 5)), RED)
    png = output(render(data, AS_IS))
    assert png.mode == "RGBA" and png.getpixel((2, 5))[3] == 0


def test_la_is_composited():
    image = Image.new("LA", (20, 10), (0, 0))
    image.paste((100, 255), (10, 0, 20, 10))
    out = output(render(encode(image), JPEG_ONLY)).convert("RGB")
    assert close(out.getpixel((2, 5)), WHITE, 10)
    assert close(out.getpixel((17, 5)), (100, 100, 100), 10)


def test_cmyk_jpeg_is_converted():
    image = Image.new("CMYK", (32, 16), (0, 255, 255, 0))  # red in CMYK
    data = encode(image, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = output(render(data, JPEG_ONLY))
    assert out.mode == "RGB"
    assert close(out.getpixel((16, 8)), RED, 50)


def test_sixteen_bit_is_scaled_not_clipped():
    image = Image.new("I;16", (32, 16), 65535)
    image.paste(32896, (16, 0, 32, 16))  # half of 65535: mid grey, not white
    data = encode(image)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    out = output(render(data, JPEG_ONLY)).convert("RGB")
    assert close(out.getpixel((4, 8)), WHITE, 5)
    assert close(out.getpixel((28, 8)), (128, 128, 128), 8)


def swapped_primaries_profile() -> bytes:
    """sRGB with its red and green colorants exchanged: a file's pure red means sRGB green
    under it, so only a real conversion turns the red pixels green."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    (count,) = struct.unpack(">I", data[128:132])
    entries = {}
    for i in range(count):
        at = 132 + 12 * i
        signature = bytes(data[at : at + 4])
        entries[signature] = at
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    data[red + 4 : red + 12], data[green + 4 : green + 12] = (
        data[green + 4 : green + 12],
        data[red + 4 : red + 12],
    )
    return bytes(data)


def test_icc_profile_is_converted_to_srgb_and_dropped():
    source = Image.new("RGB", (16, 16), RED)
    data = encode(source, "PNG", icc_profile=swapped_primaries_profile())
    out = output(render(data, JPEG_ONLY))
    assert close(out.getpixel((8, 8)), GREEN, 60), out.getpixel((8, 8))
    assert "icc_profile" not in out.info


def test_srgb_profile_is_dropped_and_pixels_kept():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    data = encode(Image.new("RGB", (16, 16), (200, 100, 50)), "JPEG", quality=95, icc_profile=srgb)
    out = output(render(data, JPEG_ONLY))
    assert close(out.getpixel((8, 8)), (200, 100, 50), 6)
    assert "icc_profile" not in out.info


def test_broken_profile_warns_and_renders(caplog):
    data = encode(Image.new("RGB", (16, 16), (200, 100, 50)), "PNG", icc_profile=b"not a profile")
    with caplog.at_level(logging.WARNING, logger="social_pipelines.media.decode"):
        out = output(render(ImageSource(data, location="broken.png"), JPEG_ONLY))
    assert close(out.getpixel((8, 8)), (200, 100, 50), 6)
    assert any("broken.png: ICC profile ignored" in r.message for r in caplog.records)


def test_metadata_is_stripped():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0)})
    buffer = io.BytesIO()
    quadrants().save(
        buffer,
        "JPEG",
        exif=exif.tobytes(),
        icc_profile=srgb,
        comment=b"secret",
        xmp=b"<x:xmpmeta/>",
    )
    source = Image.open(io.BytesIO(buffer.getvalue()))
    assert source.getexif().get_ifd(GPS_IFD) and "comment" in source.info
    for spec in (JPEG_ONLY, spec_for("bluesky")):
        out = output(render(buffer.getvalue(), spec))
        assert "exif" not in out.info
        assert len(out.getexif()) == 0 and not out.getexif().get_ifd(GPS_IFD)
        for key in ("icc_profile", "comment", "xmp", "XML:com.adobe.xmp"):
            assert key not in out.info, key
    png = output(render(encode(half_transparent(), "PNG", exif=exif.tobytes()), AS_IS))
    assert png.format == "PNG" and "exif" not in png.info and "icc_profile" not in png.info


def test_bluesky_byte_cap_on_a_noisy_camera_photo():
    data = encode(noisy_photo(4032, 3024), "JPEG", quality=92)
    stats = RenderStats()
    result = render(data, spec_for("bluesky"), stats=stats)
    assert len(result.data) <= 1_000_000
    assert max(result.width, result.height) <= 2000
    assert result.quality is not None
    assert stats.draft_scale == 2  # 2000x1500 from 4032x3024: decoded at half size


def test_quality_search_then_downscale_never_exceeds_the_cap():
    data = encode(noisy_photo(800, 600, sigma=90), "JPEG", quality=95)
    spec = JPEG_ONLY.model_copy(update={"max_bytes": 20_000, "min_quality": 30})
    result = render(data, spec)
    assert len(result.data) <= 20_000
    assert result.quality is not None and 30 <= result.quality <= 85


def test_instagram_crops():
    panorama = encode(noisy_photo(3000, 1000, sigma=5), "JPEG")  # 3:1
    result = render(panorama, spec_for("instagram"))
    assert (result.width, result.height) == (1080, 566)  # 1.908:1, inside 1.91
    small = render(encode(noisy_photo(1500, 500), "JPEG"), spec_for("instagram"))
    assert (small.width, small.height) == (955, 500)  # cropped, never grown
    tall = render(encode(noisy_photo(400, 1200), "JPEG"), spec_for("instagram"))
    assert (tall.width, tall.height) == (400, 500)  # 4:5, not grown
    square = render(panorama, spec_for("instagram", "square"))
    assert (square.width, square.height) == (1000, 1000)


def test_crop_is_central():
    wide = Image.new("RGB", (300, 100), BLUE)
    wide.paste(RED, (100, 0, 200, 100))  # red in the central third
    out = output(render(encode(wide), spec_for("instagram", "square")))
    assert out.size == (100, 100)
    assert close(out.getpixel((5, 50)), RED) and close(out.getpixel((95, 50)), RED)


def test_decodes_once_for_several_targets():
    data = jpeg_with_exif(noisy_photo(1600, 1200), orientation=6)
    specs = [
        spec_for("x"),
        spec_for("instagram", "square"),
        spec_for("instagram", "portrait"),
        spec_for("bluesky"),
    ]
    stats = RenderStats()
    results = render_for_targets(data, specs, stats=stats)
    assert stats.decodes == 1 and stats.rendered == 4
    assert [r.spec for r in results] == specs
    assert (results[0].width, results[0].height) == (1200, 1600)
    assert (results[2].width, results[2].height) == (1080, 1350)


def test_draft_uses_the_largest_reduction_every_target_allows():
    data = encode(noisy_photo(4000, 3000, sigma=10), "JPEG")
    square = spec_for("instagram", "square")  # needs 1440x1080 of the full source
    stats = RenderStats()
    render_for_targets(data, [square], stats=stats)
    assert stats.draft_scale == 2
    small = MediaSpec(platform="thumb", max_long_edge=400, max_bytes=100_000)
    stats = RenderStats()
    render_for_targets(data, [small], stats=stats)
    assert stats.draft_scale == 8  # 500x375 still covers 400x300
    stats = RenderStats()
    render_for_targets(data, [small.model_copy(update={"max_long_edge": 1000})], stats=stats)
    assert stats.draft_scale == 4  # 1000x750 exactly; 1/8 would leave 500x375
    stats = RenderStats()
    render_for_targets(data, [small, spec_for("x")], stats=stats)
    assert stats.draft_scale == 1  # X wants every pixel
    stats = RenderStats()
    render_for_targets(data, [small.model_copy(update={"allow_draft": False})], stats=stats)
    assert stats.draft_scale == 1


def test_upload_carries_alt_text():
    result = render(encode(quadrants()), spec_for("mastodon"))
    upload = result.upload(alt_text="four squares")
    assert upload.alt_text == "four squares" and upload.mime_type == result.mime_type
    assert upload.data == result.data and upload.filename.endswith(".jpg")
