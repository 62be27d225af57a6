"""Turning a source's bytes into one upright sRGB image (RGB, or RGBA with real alpha).

Everything untrusted happens here, inside one guard that turns any failure into a
`MediaError` naming the image: Pillow raises a zoo of exception types on hostile bytes
(OSError, SyntaxError, ValueError, struct.error, EOFError, ...), and a bad image must never
look like a bug in the pipeline. Decompression bombs are refused from the header, before a
pixel is decoded; truncated files fail because `ImageFile.LOAD_TRUNCATED_IMAGES` is never
set and `load()` runs inside the guard.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError, features

from social_pipelines.errors import MediaError
from social_pipelines.log import Log
from social_pipelines.media.source import ImageSource

# LittleCMS ships with Pillow's wheels, but a source build may lack it: `PIL.ImageCms` is
# imported only where it is used, and only when it is there.
CMS_AVAILABLE = features.check("littlecms2")

if TYPE_CHECKING:
    from PIL.ImageCms import ImageCmsTransform

logger = logging.getLogger(__name__)

# A 108 MP phone sensor is about the largest real photo; a header claiming more is a bomb.
# Pillow's own DecompressionBombWarning (Image.MAX_IMAGE_PIXELS, about 89.5 MP by default)
# is an error here too, so whichever threshold is lower refuses first.
MAX_SOURCE_PIXELS = 100_000_000
# What a post may carry; anything else Pillow could parse (PSD, EPS, ICO, ...) is refused.
# (MPO, a multi-picture JPEG from phones, opens through the JPEG opener.)
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP")
_ORIENTATION = 0x0112
_TRANSPOSED = frozenset({5, 6, 7, 8})  # orientations that swap width and height
_ICC_MODES = {"RGB ": "RGB", "GRAY": "L", "CMYK": "CMYK"}


@contextmanager
def guarded(source: ImageSource) -> Iterator[None]:
    """Run Pillow on untrusted bytes: every exception becomes a `MediaError`."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except MediaError:
            raise
        except UnidentifiedImageError:
            raise source.error("not an image (Pillow cannot identify it)") from None
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise source.error(f"refused as a decompression bomb: {error}") from None
        except MemoryError:
            raise source.error("too large to decode in memory") from None
        except Exception as error:
            detail = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise source.error(f"corrupt or truncated image ({detail})") from error


def open_image(source: ImageSource) -> Image.Image:
    """Open (header only) and refuse what must not be decoded: non-images, unsupported
    formats, zero or absurd sizes."""
    with guarded(source):
        image = Image.open(io.BytesIO(source.data), formats=FORMATS)
        width, height = image.size
        if width <= 0 or height <= 0:
            raise source.error(f"zero-size image ({width}x{height})")
        if width * height > MAX_SOURCE_PIXELS:
            raise source.error(
                f"refused as a decompression bomb: {width}x{height} is more than "
                f"{MAX_SOURCE_PIXELS:,} pixels"
            )
        return image


def oriented_size(image: Image.Image) -> tuple[int, int]:
    """The size once EXIF orientation is applied. Read from the header for JPEGs only:
    for other formats `getexif()` may decode the whole image to find the tag."""
    width, height = image.size
    if image.format in ("JPEG", "MPO") and image.getexif().get(_ORIENTATION) in _TRANSPOSED:
        return height, width
    return width, height


def request_draft(image: Image.Image, needed: tuple[float, float]) -> None:
    """Ask libjpeg to decode at 1/2, 1/4 or 1/8 scale when the result still has at least
    `needed` (oriented) pixels: the biggest saving of the pipeline, since the DCT scaling
    skips most of the decode. Only JPEGs draft; the request is ignored for the rest."""
    if image.format not in ("JPEG", "MPO"):
        return
    need_w, need_h = needed
    if image.getexif().get(_ORIENTATION) in _TRANSPOSED:
        need_w, need_h = need_h, need_w
    # Pillow picks the largest scale s with size // s >= request on both axes.
    image.draft(None, (max(1, int(need_w + 0.999)), max(1, int(need_h + 0.999))))


def decode(source: ImageSource, image: Image.Image, *, log: Log | None = None) -> Image.Image:
    """Decode, turn upright and convert to sRGB RGB or RGBA, with every metadata dropped."""
    with guarded(source):
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy when upright
        return _normalize(image, source, log or logger)


def _normalize(image: Image.Image, source: ImageSource, log: Log) -> Image.Image:
    icc = image.info.get("icc_profile")
    image = _eight_bit(image)  # now L, LA, RGB, RGBA or CMYK
    alpha: Image.Image | None = None
    if image.mode in ("RGBA", "LA"):
        alpha = image.getchannel("A")
        if alpha.getextrema()[0] == 255:  # opaque everywhere: no alpha worth keeping
            alpha = None
        image = image.convert("RGB" if image.mode == "RGBA" else "L")
    if icc:
        image = _to_srgb(image, icc, source, log)
    if image.mode != "RGB":
        image = image.convert("RGB")  # CMYK JPEGs: Pillow reads Adobe's inverted CMYK
    if alpha is not None:
        image.putalpha(alpha)
    image.info = {}  # EXIF, XMP, comments, the converted ICC profile: none is carried on
    return image


def _eight_bit(image: Image.Image) -> Image.Image:
    """Deep and odd modes to L, LA, RGB, RGBA or CMYK (alpha kept). `convert("L")` from a
    16-bit image clips everything above 255 to white, so 16-bit values are scaled first."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":
        if mode != "F":
            image = image.convert("I")
        _, high = image.getextrema()
        high = float(high[0] if isinstance(high, tuple) else high)
        if mode == "F" and high <= 1.0:
            scale = 255.0
        elif high <= 255:
            scale = 1.0
        elif high <= 65535:
            scale = 1 / 257
        else:
            scale = 255.0 / high
        return image.point(lambda value: value * scale).convert("L")
    if mode == "1":
        return image.convert("L")
    if mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    if mode in ("L", "RGB") and "transparency" in image.info:
        return image.convert("LA" if mode == "L" else "RGBA")
    if mode in ("PA", "RGBa"):
        return image.convert("RGBA")
    if mode == "La":
        return image.convert("LA")
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image
    return image.convert("RGB")  # YCbCr, LAB, HSV, RGBX: no alpha to keep


def _to_srgb(image: Image.Image, icc: bytes, source: ImageSource, log: Log) -> Image.Image:
    """Convert through the embedded profile to sRGB; on any trouble keep the pixels as
    they are, and say so (colours may be off, but the post still goes out)."""
    if not CMS_AVAILABLE:  # pragma: no cover - depends on the Pillow build
        log.warning(f"{source.location}: ICC profile ignored: PIL.ImageCms is unavailable")
        return image
    from PIL import ImageCms

    try:
        transform, in_mode = _transform(icc, image.mode)
    except Exception as error:
        log.warning(f"{source.location}: ICC profile ignored, cannot be used: {error}")
        return image
    if image.mode != in_mode:
        image = image.convert(in_mode)
    try:
        if in_mode == "RGB":
            ImageCms.applyTransform(image, transform, inPlace=True)
            return image
        converted = ImageCms.applyTransform(image, transform)
    except Exception as error:
        log.warning(f"{source.location}: ICC conversion failed, profile ignored: {error}")
        return image
    assert converted is not None
    return converted


@lru_cache(maxsize=16)
def _transform(icc: bytes, mode: str) -> tuple[ImageCmsTransform, str]:
    """A LittleCMS transform from the profile to sRGB, built once per profile (building one
    costs more than applying it to a social-sized image)."""
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    space = str(getattr(profile.profile, "xcolor_space", ""))
    in_mode = _ICC_MODES.get(space)
    if in_mode is None:
        raise ValueError(f"unsupported colour space {space.strip()!r}")
    if mode != in_mode and not (mode == "L" and in_mode == "RGB"):
        raise ValueError(f"a {space.strip()} profile on a {mode} image")
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return ImageCms.buildTransform(profile, srgb, in_mode, "RGB"), in_mode
