"""What state a post and each of its targets are in, derived from the outbox and the ledger.

Nothing stores a post's state: the outbox knows what the author asked (cancelled, missed,
refused targets), the ledger what happened to each target, and this module reads both
together, so the CLI, the sensor and the job can never disagree about a post.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from social_pipelines.models import DeliveryState, PostState
from social_pipelines.store.outbox import OutboxStatus, PostDeliveries, PostRecord
from social_pipelines.store.records import DeliveryRecord


class TargetState(StrEnum):
    SCHEDULED = "scheduled"  # not yet due
    DUE = "due"  # due, no run has taken it yet
    PUBLISHING = "publishing"  # planned, sending, deferred, failed (retryable) or unknown
    PUBLISHED = "published"
    DEAD = "dead"  # rejected or out of attempts: `retry` makes it due again
    REFUSED = "refused"  # cannot fit the platform: refused when scheduled or synced
    MISSED = "missed"
    CANCELLED = "cancelled"


SETTLED_TARGETS = frozenset(
    {TargetState.PUBLISHED, TargetState.DEAD, TargetState.REFUSED, TargetState.CANCELLED}
)


@dataclass(frozen=True)
class TargetView:
    target: str
    state: TargetState
    reason: str = ""
    delivery: DeliveryRecord | None = None

    @property
    def url(self) -> str:
        return (self.delivery.remote_url or "") if self.delivery else ""


@dataclass(frozen=True)
class PostView:
    record: PostRecord
    state: PostState
    targets: tuple[TargetView, ...]

    def target(self, name: str) -> TargetView:
        return next(view for view in self.targets if view.target == name)


_BY_DELIVERY = {
    DeliveryState.SENT: TargetState.PUBLISHED,
    DeliveryState.DEAD: TargetState.DEAD,
    DeliveryState.CANCELLED: TargetState.CANCELLED,
}


def target_view(
    record: PostRecord, target: str, delivery: DeliveryRecord | None, now: datetime
) -> TargetView:
    if delivery is not None and delivery.state == DeliveryState.CANCELLED:
        state = TargetState.MISSED if delivery.error_kind == "missed" else TargetState.CANCELLED
        return TargetView(target, state, delivery.error or "", delivery)
    if delivery is not None and delivery.state in _BY_DELIVERY:
        return TargetView(target, _BY_DELIVERY[delivery.state], delivery.error or "", delivery)
    if target in record.refused:
        return TargetView(target, TargetState.REFUSED, record.refused[target], delivery)
    if record.status == OutboxStatus.CANCELLED:
        return TargetView(target, TargetState.CANCELLED, record.status_reason or "", delivery)
    if record.status == OutboxStatus.MISSED and delivery is None:
        return TargetView(target, TargetState.MISSED, record.status_reason or "", delivery)
    if delivery is not None:
        return TargetView(target, TargetState.PUBLISHING, delivery.error or "", delivery)
    if record.post.at > now:
        return TargetView(target, TargetState.SCHEDULED)
    return TargetView(target, TargetState.DUE)


def post_view(record: PostRecord, deliveries: PostDeliveries, now: datetime) -> PostView:
    targets = tuple(
        target_view(record, target, deliveries.by_target.get(target), now)
        for target in record.post.targets
    )
    return PostView(record, post_state(record, targets), targets)


def post_state(record: PostRecord, targets: tuple[TargetView, ...]) -> PostState:
    """The README's states: a post is published when every target is out, partial when
    some are out and the rest will not go, failed when none went and none will."""
    states = [view.state for view in targets]
    out = states.count(TargetState.PUBLISHED)
    pending = [s for s in states if s not in SETTLED_TARGETS and s != TargetState.MISSED]
    if pending:
        if all(s == TargetState.SCHEDULED for s in pending) and out == 0:
            return PostState.SCHEDULED
        return PostState.PUBLISHING
    if out == len(states):
        return PostState.PUBLISHED
    if out:
        return PostState.PARTIAL
    if TargetState.MISSED in states:
        return PostState.MISSED
    if all(s == TargetState.CANCELLED for s in states):
        return PostState.CANCELLED
    if any(s in (TargetState.DEAD, TargetState.REFUSED) for s in states):
        return PostState.FAILED
    return PostState.CANCELLED
