"""What a publish delivery creates, prepared inside its claim: the staged uploads of an
earlier attempt are reused, and an attempt that stopped part way through the uploads
(an upload failed, the run was killed) leaves the next one only the rest to upload."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from social_pipelines.errors import Transient
from social_pipelines.models import (
    CreatePost,
    DeliveryKind,
    MediaRef,
    MediaUpload,
    Post,
    PostImage,
    publish_subject,
)
from social_pipelines.publishing.prepare import PublishPreparer
from social_pipelines.store import Origin
from social_pipelines.store.records import DeliveryRecord
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import LEASE, START, FakeClock, make_draft

RUN = "run-1"


class Images:
    """Each image "rendered" as its source name."""

    def uploads(self, post: Post, platform: str) -> list[MediaUpload]:
        return [
            MediaUpload(data=image.source.encode(), mime_type="image/jpeg", alt_text=image.alt)
            for image in post.images
        ]


class Media:
    """Uploads get ids m1, m2, ...; the upload numbered `fail_at` fails once."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.uploaded: list[bytes] = []
        self.calls = 0

    def upload_media(self, media: MediaUpload) -> MediaRef:
        self.calls += 1
        if self.calls == self.fail_at:
            raise Transient("502 on the upload", platform="mastodon", status_code=502)
        self.uploaded.append(media.data)
        return MediaRef(platform="mastodon", id=f"m{len(self.uploaded)}")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    opened = StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=FakeClock(START))
    yield opened
    opened.dispose()


def _claimed(store: StateStore, images: int) -> DeliveryRecord:
    post = Post(
        id="launch",
        text="We launched!",
        images=tuple(PostImage(source=f"photo-{n}", alt=f"photo {n}") for n in range(images)),
        targets=("brand",),
        at=START - timedelta(seconds=1),
    )
    store.outbox.save(post, origin=Origin.CLI)
    subject = publish_subject(post.id, "brand")
    draft = make_draft(
        subject, text=post.text, kind=DeliveryKind.PUBLISH, campaign="publish", reference=subject
    )
    return store.ledger.plan_and_claim(draft, run_id=RUN, lease=LEASE).record


def _prepare(store: StateStore, media: Media, record: DeliveryRecord) -> CreatePost:
    def stage(staged_id: str) -> None:
        assert store.ledger.record_staged(record.delivery_id, RUN, staged_id) is not None

    preparer = PublishPreparer(
        store.outbox,
        media,
        Images(),
        platform="mastodon",
        max_lateness=timedelta(hours=6),
        clock=store.outbox.clock,
    )
    prepared = preparer(record, stage)
    assert isinstance(prepared, CreatePost)
    return prepared


def test_a_retried_attempt_reuses_every_staged_upload(store: StateStore) -> None:
    record = _claimed(store, images=2)
    media = Media()
    first = _prepare(store, media, record)
    again = store.ledger.get(record.delivery_id)
    assert again is not None and again.staged_id == "r1:m1,m2"
    assert _prepare(store, media, again) == first
    assert first.media_ids == ("m1", "m2") and media.calls == 2


def test_an_attempt_stopped_part_way_leaves_only_the_rest_to_upload(store: StateStore) -> None:
    """The second of three uploads fails: the first is staged, and the next attempt must
    still attach all three images (it once went out with the first one only)."""
    record = _claimed(store, images=3)
    media = Media(fail_at=2)
    with pytest.raises(Transient):
        _prepare(store, media, record)
    stopped = store.ledger.get(record.delivery_id)
    assert stopped is not None and stopped.staged_id == "r1:m1"
    prepared = _prepare(store, media, stopped)
    assert prepared.media_ids == ("m1", "m2", "m3")
    # Every image uploaded once, in order: the staged one was not uploaded again.
    assert media.uploaded == [b"photo-0", b"photo-1", b"photo-2"]
    done = store.ledger.get(record.delivery_id)
    assert done is not None and done.staged_id == "r1:m1,m2,m3"
