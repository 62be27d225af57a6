"""Media uploads over HTTP: multipart bodies, and images read from their bytes by Pillow."""

from __future__ import annotations

import io

import httpx
import pytest
from PIL import Image, features

from social_pipelines.models import MediaUpload
from social_pipelines.platforms.mastodon import MastodonPlatform
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.doors import RecordingDoor

INVALID_TYPE = "Validation failed: File content type is invalid"
NOT_PROCESSED = "Validation failed: File could not be processed"


def image_bytes(image_format: str, width: int = 3, height: int = 2) -> bytes:
    """A small picture encoded by Pillow, as a client's own image library would write it."""
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(out, image_format)
    return out.getvalue()


@pytest.mark.parametrize(
    ("image_format", "mime", "ext"),
    [
        ("PNG", "image/png", "png"),
        ("JPEG", "image/jpeg", "jpg"),
        ("GIF", "image/gif", "gif"),
        ("WEBP", "image/webp", "webp"),
        pytest.param(
            "AVIF",
            "image/avif",
            "avif",
            marks=pytest.mark.skipif(not features.check("avif"), reason="Pillow without AVIF"),
        ),
    ],
)
def test_upload_reads_type_and_size_from_the_bytes(
    sandbox: SandboxProcess, image_format: str, mime: str, ext: str
):
    data = image_bytes(image_format)
    with sandbox.client() as client:
        # Labelled as something else: the bytes decide, as on Mastodon.
        response = client.post(
            "/api/v2/media",
            files={"file": ("upload.bin", data, "application/octet-stream")},
            data={"description": "three by two"},
        )
    assert response.status_code == 200, response.text
    media = response.json()
    assert media["meta"]["original"] == {"width": 3, "height": 2, "size": "3x2", "aspect": 1.5}
    assert media["description"] == "three by two"
    assert media["url"].endswith(f"/original.{ext}")
    served = httpx.get(media["url"])
    assert served.headers["content-type"] == mime
    assert served.content == data


def test_a_hand_written_multipart_body_uploads(sandbox: SandboxProcess):
    """The bytes a browser or curl sends, not what one client library happens to write."""
    data = image_bytes("PNG", 5, 4)
    boundary = "----sandbox-test-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="description"\r\n\r\n'
            "caf\u00e9 chart\r\n"
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="chart.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with sandbox.client() as client:
        response = client.post(
            "/api/v2/media",
            content=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "caf\u00e9 chart"
    assert response.json()["meta"]["original"]["size"] == "5x4"
    assert httpx.get(response.json()["url"]).content == data


def test_a_heic_is_taken_by_its_brand_without_a_size(sandbox: SandboxProcess):
    """Pillow cannot read HEIC; Mastodon takes it, so the sandbox does, size unknown."""
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with sandbox.client() as client:
        response = client.post("/api/v2/media", files={"file": ("photo.heic", data, "image/heic")})
    assert response.status_code == 200, response.text
    assert response.json()["url"].endswith("/original.heic")
    assert response.json()["meta"] == {}


def test_the_adapter_uploads_a_jpeg(sandbox: SandboxProcess):
    """The project's own Mastodon client, multipart and all, against the sandbox."""
    data = image_bytes("JPEG", 6, 4)
    with MastodonPlatform(
        sandbox.url, sandbox.token(), door=RecordingDoor(), timeout=5
    ) as platform:
        ref = platform.upload_media(MediaUpload(data=data, mime_type="image/jpeg", alt_text="A"))
    assert ref.url.endswith("/original.jpg")
    assert httpx.get(ref.url).content == data
    with sandbox.client() as client:
        media = client.get(f"/api/v1/media/{ref.id}").json()
    assert media["meta"]["original"]["size"] == "6x4"
    assert media["description"] == "A"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("cut-short.jpg", image_bytes("JPEG")[:40], NOT_PROCESSED),
        ("bad-header.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, INVALID_TYPE),
        ("noise.gif", b"GIF89a" + bytes(range(256)), INVALID_TYPE),
        ("picture.bmp", image_bytes("BMP"), INVALID_TYPE),  # an image, not one Mastodon takes
    ],
)
def test_an_image_that_cannot_be_read_is_refused(
    sandbox: SandboxProcess, name: str, data: bytes, message: str
):
    with sandbox.client() as client:
        response = client.post("/api/v2/media", files={"file": (name, data, "image/png")})
    assert response.status_code == 422
    assert response.json() == {"error": message}
    assert sandbox.stats()["media_uploaded"] == 0


def test_uploads_attach_through_a_multipart_status(sandbox: SandboxProcess):
    """`media_ids[]` parts form a list, in order; a bare `media_ids` part is ignored."""
    with sandbox.client() as client:
        ids = [
            client.post(
                "/api/v2/media", files={"file": (f"{n}.png", image_bytes("PNG", n, n), "image/png")}
            ).json()["id"]
            for n in (1, 2)
        ]
        fields = [("status", "two charts"), ("media_ids[]", ids[1]), ("media_ids[]", ids[0])]
        status = client.post("/api/v1/statuses", files=[(k, (None, v)) for k, v in fields])
        assert status.status_code == 200, status.text
        assert [m["id"] for m in status.json()["media_attachments"]] == [ids[1], ids[0]]
        extra = client.post(
            "/api/v2/media", files={"file": ("3.png", image_bytes("PNG"), "image/png")}
        ).json()["id"]
        bare = client.post(
            "/api/v1/statuses", files=[("status", (None, "bare")), ("media_ids", (None, extra))]
        )
        assert bare.status_code == 200, bare.text
        assert bare.json()["media_attachments"] == []


def test_a_description_over_a_megabyte_is_refused_by_length(sandbox: SandboxProcess):
    """A field larger than Starlette's default part size still reaches Mastodon's check."""
    with sandbox.client() as client:
        response = client.post(
            "/api/v2/media",
            files={"file": ("a.png", image_bytes("PNG"), "image/png")},
            data={"description": "d" * (1024 * 1024 + 1)},
        )
    assert response.status_code == 422
    assert response.json() == {
        "error": "Validation failed: Description is too long (maximum is 1500 characters)"
    }


def test_multipart_without_a_boundary_is_a_400(sandbox: SandboxProcess):
    body = b'--x\r\nContent-Disposition: form-data; name="status"\r\n\r\nhi\r\n--x--\r\n'
    with sandbox.client() as client:
        for path in ("/api/v1/statuses", "/api/v2/media"):
            response = client.post(
                path, content=body, headers={"Content-Type": "multipart/form-data"}
            )
            assert response.status_code == 400
            assert response.json() == {"error": "multipart body without a boundary"}
    assert sandbox.stats()["statuses_created"] == 0


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data; boundary=x", b"this is not multipart"),
        ("multipart/form-data; boundary=x", b"--x\r\nno header here\r\n\r\nhi\r\n--x--\r\n"),
        ("application/json", b'{"status": '),
    ],
    ids=["not-multipart", "part-without-headers", "cut-short-json"],
)
def test_a_body_that_cannot_be_parsed_is_a_400(
    sandbox: SandboxProcess, content_type: str, body: bytes
):
    with sandbox.client() as client:
        for path in ("/api/v1/statuses", "/api/v2/media"):
            response = client.post(path, content=body, headers={"Content-Type": content_type})
            assert response.status_code == 400
            assert list(response.json()) == ["error"] and response.json()["error"]
    assert sandbox.stats()["statuses_created"] == 0
    assert sandbox.stats()["media_uploaded"] == 0
