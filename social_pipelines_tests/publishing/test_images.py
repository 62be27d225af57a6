"""A post's images per platform: an https image is fetched once for every platform and
retry, rendered once per platform, and a bad one refused naming the post and the image."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import respx
from PIL import Image

from social_pipelines.errors import Rejected, Transient
from social_pipelines.models import Post, PostImage
from social_pipelines.publishing.images import PostImages

URL = "https://images.example/photo.jpg"


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (800, 600), (30, 120, 200)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _post(source: str = URL) -> Post:
    return Post(
        id="p1",
        text="t",
        targets=("a",),
        at=datetime(2026, 12, 1, tzinfo=UTC),
        images=(PostImage(source=source, alt="blue"),),
    )


def test_a_url_is_fetched_once_for_every_platform_and_retry(tmp_path: Path) -> None:
    images = PostImages(tmp_path)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.get(URL).mock(return_value=httpx.Response(200, content=_jpeg()))
        assert images.prerender(_post(), ["mastodon", "bluesky"]) == []
        (mastodon,) = images.uploads(_post(), "mastodon")
        (bluesky,) = PostImages(tmp_path).uploads(_post(), "bluesky")  # another process
        assert route.call_count == 1
    assert mastodon.alt_text == "blue" and mastodon.filename == "p1-1.jpg"
    assert len(bluesky.data) <= 1_000_000


def test_a_bad_image_is_refused_naming_post_and_image(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    images = PostImages(tmp_path / "cache")
    problems = images.prerender(_post(str(broken)), ["mastodon"])
    assert problems and "post 'p1'" in problems[0] and "broken.jpg" in problems[0]
    with pytest.raises(Rejected, match=r"broken\.jpg"):
        images.uploads(_post(str(broken)), "mastodon")


def test_an_image_host_down_is_worth_another_try(tmp_path: Path) -> None:
    with respx.mock() as mock:
        mock.get(URL).mock(return_value=httpx.Response(503))
        with pytest.raises(Transient, match=r"photo\.jpg"):
            PostImages(tmp_path).uploads(_post(), "mastodon")
