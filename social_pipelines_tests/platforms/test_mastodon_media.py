"""Media still processing, against the real sandbox: the adapter waits for an upload to be
processed, and a create naming unfinished media is a wait (NotReady), never a rejection."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from social_pipelines.errors import NotReady, Transient
from social_pipelines.models import CreatePost, MediaUpload
from social_pipelines.platforms.mastodon import POLICY, MastodonPlatform
from social_pipelines.resilience.breaker import _not_platform_failure
from social_pipelines.resilience.retry import is_safe_to_repeat, retrying
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.sandbox.fixtures import png_bytes, sandbox, sandbox_server  # noqa: F401

UPLOAD = MediaUpload(data=png_bytes(4, 3), mime_type="image/png", alt_text="a chart")


@pytest.fixture
def door() -> RecordingDoor:
    return RecordingDoor()


@pytest.fixture
def brand(sandbox: SandboxProcess, door: RecordingDoor) -> Iterator[MastodonPlatform]:  # noqa: F811
    with MastodonPlatform(sandbox.url, sandbox.token(), door=door, timeout=5) as platform:
        yield platform


def test_an_upload_still_processing_is_waited_for(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
    door: RecordingDoor,
):
    sandbox.set_media_processing(2)
    started = time.monotonic()
    ref = brand.upload_media(UPLOAD)
    assert time.monotonic() - started >= 2
    assert ref.url.endswith("/original.png")
    # The upload, then polls: every one through the door, as reads.
    endpoints = [passage.endpoint for passage in door.passages]
    assert endpoints[0] == "media" and len(endpoints) >= 3
    assert set(endpoints[1:]) == {"media_status"}
    assert [p.status for p in door.passages][1:-1] == [206] * (len(endpoints) - 2)
    assert door.passages[-1].status == 200
    # Ready: a status takes it at the first attempt.
    published = brand.create_post(
        CreatePost(text="chart", media_ids=(ref.id,)), idempotency_key="k"
    )
    assert sandbox.posted()[0]["media_ids"] == [ref.id]
    assert published.remote_id == sandbox.posted()[0]["id"]


def test_an_upload_processed_at_once_is_not_polled(brand: MastodonPlatform, door: RecordingDoor):
    assert brand.upload_media(UPLOAD).url
    assert [passage.endpoint for passage in door.passages] == ["media"]


def test_an_upload_that_never_finishes_is_transient_naming_the_media(
    sandbox: SandboxProcess,  # noqa: F811
    door: RecordingDoor,
):
    sandbox.set_media_processing(600)
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(seconds)
        now[0] += seconds

    with (
        MastodonPlatform(
            sandbox.url,
            sandbox.token(),
            door=door,
            timeout=5,
            media_wait=10,
            sleep=sleep,
            clock=lambda: now[0],
        ) as platform,
        pytest.raises(Transient, match=r"media \d+ was still processing after 10 s"),
    ):
        platform.upload_media(UPLOAD)
    assert pauses == [0.5, 1.0, 2.0, 4.0, 2.5]  # backoff, and never past the bound
    assert sum(pauses) == 10


def test_a_create_naming_unfinished_media_is_a_wait_and_succeeds_when_repeated(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
):
    sandbox.set_media_processing(2)
    with sandbox.client() as client:  # an upload that did not wait for processing
        upload = client.post(
            "/api/v2/media", files={"file": ("chart.png", png_bytes(), "image/png")}
        )
    assert upload.status_code == 202
    post = CreatePost(text="too early", media_ids=(upload.json()["id"],))

    with pytest.raises(NotReady) as caught:
        brand.create_post(post, idempotency_key="early")
    error = caught.value
    assert (error.status_code, error.kind, error.retry_after) == (422, "not_ready", 1.0)
    assert "not finished processing" in str(error)
    # Not sent: repeated in place, and no sign of an unwell platform for the breaker.
    assert not error.may_have_reached
    assert is_safe_to_repeat(error, policy=POLICY)
    assert _not_platform_failure(error)
    assert sandbox.posted() == []

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    published = retrying(POLICY, what="create", sleep=sleep)(
        lambda: brand.create_post(post, idempotency_key="early")
    )
    assert waits and all(wait >= 1.0 for wait in waits)
    posted = sandbox.posted()
    assert [p["id"] for p in posted] == [published.remote_id]
    assert posted[0]["media_ids"] == [upload.json()["id"]]
