"""Test images made in code (no binary fixtures)."""

from __future__ import annotations

import io

from PIL import Image

ORIENTATION = 0x0112
GPS_IFD = 0x8825


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def quadrants(width: int = 64, height: int = 48) -> Image.Image:
    """Red top-left, green top-right, blue bottom-left, white bottom-right."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    image.paste((255, 0, 0), (0, 0, half_w, half_h))
    image.paste((0, 255, 0), (half_w, 0, width, half_h))
    image.paste((0, 0, 255), (0, half_h, half_w, height))
    image.paste((255, 255, 255), (half_w, half_h, width, height))
    return image


def jpeg_with_exif(
    image: Image.Image, *, orientation: int | None = None, gps: bool = False
) -> bytes:
    exif = Image.Exif()
    if orientation:
        exif[ORIENTATION] = orientation
    if gps:
        exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def noisy_photo(width: int, height: int, sigma: float = 60.0) -> Image.Image:
    """Smooth gradients plus noise: a JPEG of it is about as large as a phone photo's."""
    ramp = Image.linear_gradient("L").resize((width, height))
    ring = Image.radial_gradient("L").resize((width, height))
    noise = Image.effect_noise((width, height), sigma)
    mixed = [
        Image.blend(band, noise, 0.5)
        for band in (ramp, ring, ramp.transpose(Image.Transpose.ROTATE_180))
    ]
    return Image.merge("RGB", mixed)


def close(pixel, expected, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True))
