"""What a publish delivery creates, worked out inside its claim, right before the create.

The post is read again from the outbox at that moment, so a cancel or an edit made a second
before wins; a post found far past its time is withdrawn as missed (a stale backlog must not
flood an account after an outage); images are rendered for the platform (from the render
cache when a plan or an earlier attempt made them) and uploaded once: the uploaded ids are
staged in the ledger row with the revision they belong to, one by one, so a retried attempt
reuses them (and uploads only the images an interrupted attempt did not get to) and an
edited post uploads its new images.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from social_pipelines.clock import Clock, utcnow
from social_pipelines.delivery import Cancelled
from social_pipelines.errors import Rejected
from social_pipelines.models import CreatePost, MediaRef, MediaUpload, Post, stage_media
from social_pipelines.models import staged_media as staged_for
from social_pipelines.publishing.dispatch import missed_reason
from social_pipelines.store.outbox import Outbox, OutboxStatus
from social_pipelines.store.records import DeliveryRecord


class MediaSink(Protocol):
    def upload_media(self, media: MediaUpload) -> MediaRef: ...


class Uploads(Protocol):
    """The images of a post as one platform gets them (rendered, alt text attached)."""

    def uploads(self, post: Post, platform: str) -> list[MediaUpload]: ...


def split_reference(reference: str) -> tuple[str, str]:
    """`post_id/target` -> (post_id, target)."""
    post_id, _, target = reference.partition("/")
    return post_id, target


def staged_media(staged_id: str | None, revision: int) -> list[str] | None:
    """The media ids an earlier attempt uploaded for this revision, if any."""
    staged = staged_for(staged_id)
    if staged is None or staged[0] != revision:
        return None
    return list(staged[1])


class PublishPreparer:
    """The `prepare` of a deliverer sending one account's publishes."""

    def __init__(
        self,
        outbox: Outbox,
        media: MediaSink,
        images: Uploads,
        *,
        platform: str,
        max_lateness: timedelta,
        force_late: bool = False,
        clock: Clock = utcnow,
    ) -> None:
        self.outbox = outbox
        self.media = media
        self.images = images
        self.platform = platform
        self.max_lateness = max_lateness
        self.force_late = force_late
        self.clock = clock

    def __call__(
        self, record: DeliveryRecord, stage: Callable[[str], None]
    ) -> CreatePost | Cancelled:
        post_id, target = split_reference(record.reference or record.subject)
        current = self.outbox.get(post_id)
        if current is None:
            return Cancelled(f"post {post_id!r} is no longer in the outbox")
        if current.status == OutboxStatus.CANCELLED:
            return Cancelled(current.status_reason or "cancelled")
        post = current.post
        if target not in post.targets:
            return Cancelled(f"{target} is no longer a target of post {post_id!r}")
        if target in current.refused:
            raise Rejected(f"post {post_id!r} cannot go to {target}: {current.refused[target]}")
        late = self.clock() - post.at
        if late > self.max_lateness and not self.force_late:
            return Cancelled(missed_reason(late, self.max_lateness), kind="missed")
        # Staged one by one, in order: an attempt that stopped part way (an upload failed,
        # the run was killed) left the first images, and only the rest are uploaded now.
        media_ids = staged_media(record.staged_id, current.revision) or []
        if len(media_ids) < len(post.images):
            for upload in self.images.uploads(post, self.platform)[len(media_ids) :]:
                media_ids.append(self.media.upload_media(upload).id)
                stage(stage_media(current.revision, media_ids))
        return CreatePost(text=post.body_for(target), media_ids=tuple(media_ids))
