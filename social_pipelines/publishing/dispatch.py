"""Which posts the due-posts sensor launches now, in how many runs, and which are missed.

Plain Python over the outbox, so the sensor stays a few lines and a benchmark can time one
evaluation against a large outbox: one indexed query for what falls due within the lead,
one for those posts' deliveries, a write pushing their next look past the run's lease. Runs
are grouped by the posts' target accounts, up to `POSTS_PER_RUN` posts each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from social_pipelines.store.outbox import Outbox, OutboxStatus, PostDeliveries, PostRecord

POSTS_PER_RUN = 100
# At most this many posts are looked at per evaluation; the rest come next tick.
PER_EVALUATION = 1000


@dataclass(frozen=True)
class DueRun:
    key: str
    post_ids: list[str]


@dataclass
class Dispatch:
    runs: list[DueRun] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)
    next_check: datetime | None = None
    capped: bool = False
    # Posts not launched because every target account they still go to is held (marked
    # reconnect_needed), each with why; they stay due.
    held: list[str] = field(default_factory=list)

    def skip_reason(self) -> str:
        if self.held:
            return f"{len(self.held)} due post(s) held: " + "; ".join(self.held[:5])
        if self.next_check is None:
            return "no post is scheduled"
        return f"nothing due; next post at {self.next_check:%Y-%m-%d %H:%M:%S} UTC"


def missed_reason(late: timedelta, max_lateness: timedelta) -> str:
    """Why a post is not sent: found too late, and what would send it anyway."""
    return (
        f"missed: found {late.total_seconds() / 3600:.1f} h after its time, more than "
        f"SOCIAL_PUBLISH_MAX_LATENESS ({max_lateness}); publish_job with force_late sends it"
    )


def too_late(
    record: PostRecord, deliveries: PostDeliveries, now: datetime, max_lateness: timedelta
) -> str | None:
    """Why the post is missed, when it is found more than `max_lateness` after its time with
    nothing of it planned yet (a planned target is its deliverer's to decide); else None."""
    late = now - record.post.at
    if late > max_lateness and not deliveries.by_target:
        return missed_reason(late, max_lateness)
    return None


def due_runs(
    outbox: Outbox,
    *,
    lead: timedelta,
    max_lateness: timedelta,
    lease: timedelta,
    posts_per_run: int = POSTS_PER_RUN,
    limit: int = PER_EVALUATION,
    held: Mapping[str, str] | None = None,
) -> Dispatch:
    """Take the posts due within `lead`: mark the ones found too late missed (never sent,
    reported), group the rest into runs, and leave them alone for `lease` (a run that
    finishes marks them done; one that fails leaves them to come back after it).

    `held` names accounts nothing may post as now (marked reconnect_needed), with why: a
    post all of whose open targets are held is not launched and says so; it is looked at
    again after `lease` (and missed, like any post, once it is too late)."""
    now = outbox.clock()
    due = outbox.due(until=now + lead, limit=limit)
    dispatch = Dispatch(capped=len(due) == limit)
    if not due:
        dispatch.next_check = outbox.next_check()
        return dispatch
    deliveries = outbox.deliveries(due)
    launch: list[str] = []
    # Runs by target accounts: the run's steps (one per account) run one after the other in
    # its process, so a step waiting for its posts' times would hold back another account's
    # posts of the same run; and one step per run is less run time per post.
    by_targets: dict[tuple[str, ...], list[str]] = {}
    for record in due:
        reason = too_late(record, deliveries[record.post_id], now, max_lateness)
        if reason is not None:
            if outbox.set_status(record.post_id, OutboxStatus.MISSED, reason=reason):
                dispatch.missed.append(f"post {record.post_id!r}: {reason}")
            continue
        waiting = [t for t in record.post.targets if t not in record.refused]
        if held and waiting and all(t in held for t in waiting):
            dispatch.held.append(
                f"post {record.post_id!r}: "
                + "; ".join(f"{t}: {held[t]}" for t in sorted(set(waiting)))
            )
            outbox.check_again_at([record.post_id], now + lease)
            continue
        launch.append(record.post_id)
        by_targets.setdefault(tuple(sorted(record.post.targets)), []).append(record.post_id)
    outbox.check_again_at(launch, now + lease)
    for group in by_targets.values():  # earliest first, as `due` is
        for start in range(0, len(group), posts_per_run):
            ids = group[start : start + posts_per_run]
            digest = hashlib.sha256("\x1f".join(ids).encode()).hexdigest()[:12]
            dispatch.runs.append(
                DueRun(key=f"publish-{now:%Y%m%dT%H%M%S.%f}-{digest}", post_ids=ids)
            )
    return dispatch
