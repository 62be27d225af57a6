"""A post's state from its targets: every combination the README's table names."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from social_pipelines.models import Post, PostState
from social_pipelines.publishing.states import TargetState, TargetView, post_state
from social_pipelines.store.outbox import Origin, OutboxStatus, PostRecord

AT = datetime(2026, 12, 24, 8, 0, tzinfo=UTC)


def _record(status: OutboxStatus = OutboxStatus.OPEN) -> PostRecord:
    post = Post(id="p", text="t", targets=("a", "b"), at=AT)
    return PostRecord(
        post=post,
        revision=1,
        latest_revision=1,
        latest_hash=post.content_hash(),
        status=status,
        status_reason=None,
        origin=Origin.CLI,
        source="",
        refused={},
        next_check_at=AT,
        created_at=AT,
        updated_at=AT,
    )


S = TargetState


@pytest.mark.parametrize(
    ("a", "b", "status", "expected"),
    [
        (S.SCHEDULED, S.SCHEDULED, OutboxStatus.OPEN, PostState.SCHEDULED),
        (S.DUE, S.SCHEDULED, OutboxStatus.OPEN, PostState.PUBLISHING),
        (S.PUBLISHED, S.PUBLISHING, OutboxStatus.OPEN, PostState.PUBLISHING),
        (S.PUBLISHED, S.PUBLISHED, OutboxStatus.DONE, PostState.PUBLISHED),
        (S.PUBLISHED, S.DEAD, OutboxStatus.DONE, PostState.PARTIAL),
        (S.PUBLISHED, S.REFUSED, OutboxStatus.DONE, PostState.PARTIAL),
        (S.PUBLISHED, S.CANCELLED, OutboxStatus.CANCELLED, PostState.PARTIAL),
        (S.DEAD, S.REFUSED, OutboxStatus.DONE, PostState.FAILED),
        (S.DEAD, S.CANCELLED, OutboxStatus.CANCELLED, PostState.FAILED),
        (S.MISSED, S.MISSED, OutboxStatus.MISSED, PostState.MISSED),
        (S.CANCELLED, S.CANCELLED, OutboxStatus.CANCELLED, PostState.CANCELLED),
    ],
)
def test_post_state(a: S, b: S, status: OutboxStatus, expected: PostState) -> None:
    targets = (TargetView("a", a), TargetView("b", b))
    assert post_state(_record(status), targets) == expected
