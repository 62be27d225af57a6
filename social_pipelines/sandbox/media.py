"""Uploaded image checks: what the bytes really are, and how big the picture is.

Mastodon decides the type from the bytes (not the declared Content-Type) and refuses what it
cannot process, so a client that labels a JPEG as PNG still works and one that uploads
garbage fails here exactly as it would in production.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

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
    mime = sniff_mime(data)
    if mime is None:
        raise MediaRejected("Validation failed: File content type is invalid")
    size = dimensions(mime, data)
    if size is None and mime in ("image/jpeg", "image/png", "image/gif", "image/webp"):
        raise MediaRejected("Validation failed: File could not be processed")
    width, height = size if size is not None else (None, None)
    if width is not None and height is not None:
        if width <= 0 or height <= 0:
            raise MediaRejected("Validation failed: File could not be processed")
        if width * height > IMAGE_MATRIX_LIMIT:
            raise MediaRejected(
                f"Validation failed: File dimensions {width}x{height} are too large"
            )
    return ImageInfo(mime, width, height)


def sniff_mime(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "image/avif"
        if brand in (b"heic", b"heix", b"heim", b"heis"):
            return "image/heic"
        if brand in (b"mif1", b"msf1"):
            return "image/heif"
    return None


def dimensions(mime: str, data: bytes) -> tuple[int, int] | None:
    try:
        if mime == "image/png":
            return _png(data)
        if mime == "image/gif":
            return _gif(data)
        if mime == "image/jpeg":
            return _jpeg(data)
        if mime == "image/webp":
            return _webp(data)
    except (struct.error, IndexError):
        return None
    return None


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _jpeg(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 4 <= len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


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
