"""Uploaded image checks: what the bytes really are, and how big the picture is.

Mastodon decides the type from the bytes (not the declared Content-Type) and refuses what it
cannot process, so a client that labels a JPEG as PNG still works and one that uploads
garbage fails here exactly as it would in production.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from io import BytesIO

from PIL import Image, UnidentifiedImageError

IMAGE_SIZE_LIMIT = 16 * 1024 * 1024
IMAGE_MATRIX_LIMIT = 33_177_600
DESCRIPTION_LIMIT = 1500
# Mastodon's "small" preview fits in 640x360 worth of pixels.
PREVIEW_PIXELS = 640 * 360
SUPPORTED_MIME_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/heic",
    "image/heif",
    "image/webp",
    "image/avif",
)
EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/webp": "webp",
    "image/avif": "avif",
}
# The Pillow formats Mastodon takes, by the type it reports; Pillow tries no others.
PILLOW_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
}
# Pillow's JPEG opener names a JPEG with several frames (a camera's MPO) "MPO".
PILLOW_MIME = {**PILLOW_FORMATS, "MPO": "image/jpeg"}
HEIF_BRANDS = {
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"mif1": "image/heif",
    b"msf1": "image/heif",
}
# A valid blurhash (the format's reference example): computing a real one needs pixels.
PLACEHOLDER_BLURHASH = "LEHV6nWB2yk8pyo0adR*.7kCMdnj"


class MediaRejected(ValueError):
    """The upload cannot be processed; the message is Mastodon's 422 error text."""


@dataclass(frozen=True)
class ImageInfo:
    mime: str
    width: int | None
    height: int | None

    @property
    def ext(self) -> str:
        return EXTENSIONS[self.mime]


def inspect_image(data: bytes) -> ImageInfo:
    """Type and size of an upload, or `MediaRejected` with the message Mastodon gives."""
    if len(data) > IMAGE_SIZE_LIMIT:
        raise MediaRejected("Validation failed: File file size must be less than 16 MB")
    mime = _heif_mime(data)
    if mime is not None:
        return ImageInfo(mime, None, None)
    mime, (width, height) = _read_header(data)
    if width * height > IMAGE_MATRIX_LIMIT:
        raise MediaRejected(f"Validation failed: File dimensions {width}x{height} are too large")
    return ImageInfo(mime, width, height)


def _read_header(data: bytes) -> tuple[str, tuple[int, int]]:
    """Type and size from Pillow, which reads only the header until the pixels are asked for.

    Pillow tells the type from the bytes, as Mastodon does; what it cannot identify (or is a
    type Mastodon does not take) is refused as an invalid type, a header it recognises but
    cannot read as a file that could not be processed.
    """
    try:
        with Image.open(BytesIO(data), formats=list(PILLOW_FORMATS)) as image:
            return PILLOW_MIME[image.format or ""], image.size
    except UnidentifiedImageError as error:
        raise MediaRejected("Validation failed: File content type is invalid") from error
    except Image.DecompressionBombError as error:
        # Far beyond the matrix limit: Pillow refuses before it hands the size over.
        raise MediaRejected("Validation failed: File dimensions are too large") from error
    except (OSError, ValueError, SyntaxError) as error:
        raise MediaRejected("Validation failed: File could not be processed") from error


def _heif_mime(data: bytes) -> str | None:
    """HEIC or HEIF by the ISO-BMFF brand: Mastodon takes them, Pillow cannot read them."""
    if data[4:8] != b"ftyp":
        return None
    return HEIF_BRANDS.get(data[8:12])


def meta(width: int | None, height: int | None) -> dict[str, object]:
    """MediaAttachment `meta` as Mastodon computes it for an image."""
    if not width or not height:
        return {}
    scale = min(1.0, math.sqrt(PREVIEW_PIXELS / (width * height)))
    small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
    return {
        "original": _size(width, height),
        "small": _size(small_w, small_h),
    }


def _size(width: int, height: int) -> dict[str, object]:
    return {
        "width": width,
        "height": height,
        "size": f"{width}x{height}",
        "aspect": width / height,
    }
