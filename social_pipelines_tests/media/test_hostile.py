"""Refusals: every bad source is a `MediaError` naming the image and the post."""

from __future__ import annotations

import random
import struct
import time
import zlib

import httpx
import pytest
import respx

from social_pipelines.errors import ConfigError, MediaError
from social_pipelines.media import ImageSource, load_source, render, spec_for
from social_pipelines_tests.media.images import encode, jpeg_with_exif, quadrants

URL = "https://images.example/photos/a.jpg"


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge 1-bit image (never decoded if refused)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def refused(data: bytes, match: str) -> MediaError:
    with pytest.raises(MediaError, match=match) as caught:
        render(ImageSource(data, location="photos/a.jpg", post_id="launch-1"), spec_for("x"))
    assert caught.value.image == "photos/a.jpg" and caught.value.post_id == "launch-1"
    assert str(caught.value).startswith("post 'launch-1', image 'photos/a.jpg': ")
    return caught.value


def test_media_error_is_a_config_error():
    error = MediaError("not an image", image="photos/a.jpg", post_id="launch-1")
    assert isinstance(error, ConfigError)
    assert str(error) == "post 'launch-1', image 'photos/a.jpg': not an image"
    assert str(MediaError("x", image="b.png")) == "image 'b.png': x"


@pytest.mark.parametrize("size", [(50_000, 50_000), (12_000, 9_000), (10_001, 10_000)])
def test_decompression_bombs_are_refused_before_decoding(size):
    started = time.perf_counter()
    refused(png_header_claiming(*size), "decompression bomb")
    assert time.perf_counter() - started < 1.0


def test_truncated_jpeg():
    data = jpeg_with_exif(quadrants(640, 480))
    refused(data[: len(data) // 2], "corrupt or truncated")


def test_random_bytes_and_empty():
    refused(random.Random(1).randbytes(4000), "not an image")
    refused(b"", "not an image")


def test_unsupported_format_is_refused():
    refused(encode(quadrants(), "PPM"), "not an image")


def test_local_files(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(jpeg_with_exif(quadrants()))
    (tmp_path / "empty.png").write_bytes(b"")
    source = load_source("photos/a.jpg", base_dir=tmp_path, post_id="launch-1")
    assert source.location == "photos/a.jpg" and len(source.content_hash) == 64
    with pytest.raises(MediaError, match=r"post 'launch-1', image 'missing.jpg': file not found"):
        load_source("missing.jpg", base_dir=tmp_path, post_id="launch-1")
    with pytest.raises(MediaError, match="empty"):
        load_source("empty.png", base_dir=tmp_path)
    with pytest.raises(MediaError, match="directory"):
        load_source("photos", base_dir=tmp_path)
    with pytest.raises(MediaError, match="larger than 100 bytes"):
        load_source("photos/a.jpg", base_dir=tmp_path, max_bytes=100)


@pytest.mark.parametrize(
    "location",
    [
        "http://images.example/a.jpg",
        "ftp://images.example/a.jpg",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
    ],
)
def test_other_schemes_are_refused(location):
    with pytest.raises(MediaError, match="refused: only a local path or an https:// URL"):
        load_source(location, post_id="launch-1")


@respx.mock
def test_https_fetch():
    data = jpeg_with_exif(quadrants())
    respx.get(URL).mock(return_value=httpx.Response(200, content=data))
    source = load_source(URL)
    assert source.data == data and source.stem == "a"


@respx.mock
def test_https_over_the_byte_cap_declared_and_streamed():
    respx.get(URL).mock(return_value=httpx.Response(200, content=b"x" * 5000))
    with pytest.raises(MediaError, match="larger than 1,000 bytes"):
        load_source(URL, max_bytes=1000)

    class Endless(httpx.SyncByteStream):
        sent = 0

        def __iter__(self):
            while True:
                Endless.sent += 1000
                yield b"x" * 1000

    respx.get(URL).mock(return_value=httpx.Response(200, stream=Endless()))
    with pytest.raises(MediaError, match="stopped reading"):
        load_source(URL, max_bytes=10_000)
    assert Endless.sent < 100_000  # stopped near the cap, not at the end of the stream


@respx.mock
def test_https_too_slow():
    class Trickle(httpx.SyncByteStream):
        def __iter__(self):
            for _ in range(100):
                time.sleep(0.05)
                yield b"x" * 10

    respx.get(URL).mock(return_value=httpx.Response(200, stream=Trickle()))
    started = time.perf_counter()
    with pytest.raises(MediaError, match=r"longer than 0\.3 s") as caught:
        load_source(URL, timeout=0.3, post_id="launch-1")
    assert time.perf_counter() - started < 1.0
    assert caught.value.transient
    respx.get(URL).mock(side_effect=httpx.ConnectTimeout("slow"))
    with pytest.raises(MediaError, match="longer than"):
        load_source(URL, timeout=0.3)


@respx.mock
def test_https_errors_and_redirects():
    respx.get(URL).mock(return_value=httpx.Response(404))
    with pytest.raises(MediaError, match="HTTP 404") as caught:
        load_source(URL)
    assert not caught.value.transient
    respx.get(URL).mock(
        return_value=httpx.Response(302, headers={"location": "http://images.example/a.jpg"})
    )
    with pytest.raises(MediaError, match="non-https"):
        load_source(URL)
    data = jpeg_with_exif(quadrants())
    respx.get(URL).mock(
        return_value=httpx.Response(301, headers={"location": "https://cdn.example/a.jpg"})
    )
    respx.get("https://cdn.example/a.jpg").mock(return_value=httpx.Response(200, content=data))
    assert load_source(URL).data == data
