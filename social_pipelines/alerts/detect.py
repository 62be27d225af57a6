"""Finding what to alert about in the state store, tick after tick, each event once.

Each event gets a key from its own identity, so finding it again (the next tick, a second
sensor process, a window that overlaps the last) records nothing new:

| kind | key |
|---|---|
| circuit_open | breaker name + when it opened (`breaker_events`) |
| reconnect_needed | platform + account + when it was marked |
| post_missed | post id + target (the whole post marked missed, or one target withdrawn) |
| delivery_dead | delivery id + its attempts (retried by hand and dead again: a new event) |
| quota_used_up | platform + account + the UTC day (at most one a day per account) |

Scanning is bounded: each source is read from where the last tick stopped (the `cursor`,
a little earlier, for rows committed late), at most `limit` rows a tick, oldest first; a
source that has more says so and goes on from its last row next tick. A cursor older than
`MAX_LOOK_BACK` (the sensor was off) is not followed: what is older is said, not alerted.
Accounts marked for reconnection are one row per account and read whole.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from social_pipelines.alerts.model import Alert, AlertKind, Severity
from social_pipelines.errors import error_class_for_kind, summarize
from social_pipelines.models import DeliveryKind
from social_pipelines.store.events import CircuitOpened, EventReads, ReconnectMark
from social_pipelines.store.outbox import PostRecord
from social_pipelines.store.records import DeliveryRecord

SCAN_LIMIT = 200
# A row stamped a moment before the last tick may commit after it: look back this far.
LATE_COMMIT_SLACK = timedelta(minutes=2)
# The first tick (no cursor) looks back this far; an older cursor is not followed.
MAX_LOOK_BACK = timedelta(hours=24)
REASON_LIMIT = 300


@dataclass
class Detection:
    """What one tick found: alerts (known ones included; recording skips them), the
    cursor for the next tick, and notes on every limit that stopped a scan."""

    alerts: list[Alert] = field(default_factory=list)
    cursor: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Source:
    name: str
    read: Callable[[datetime, int], Sequence[Any]]
    time_of: Callable[[Any], datetime]
    alerts_of: Callable[[Sequence[Any]], list[Alert]]


def detect(
    events: EventReads, cursor: str | None, *, now: datetime, limit: int = SCAN_LIMIT
) -> Detection:
    """Every event since the cursor, as alerts; the next cursor."""
    since_by_source = _read_cursor(cursor)
    found = Detection()
    next_cursor: dict[str, str] = {}
    oldest_allowed = now - MAX_LOOK_BACK
    for source in _sources(events):
        since = since_by_source.get(source.name)
        if since is None:
            since = oldest_allowed
        elif since < oldest_allowed:
            found.notes.append(
                f"{source.name}: last looked at {since:%Y-%m-%d %H:%M} UTC, more than "
                f"{MAX_LOOK_BACK.total_seconds() / 3600:g} h ago; events before "
                f"{oldest_allowed:%Y-%m-%d %H:%M} UTC are not alerted (`social-pipelines "
                "ledger --state dead` and `dead-letters` list them)"
            )
            since = oldest_allowed
        rows = list(source.read(since, limit + 1))
        resume = now - LATE_COMMIT_SLACK
        if len(rows) > limit:
            rows = rows[:limit]
            last = source.time_of(rows[-1])
            # Go on from the last row read (it is read again, and known); always forward.
            resume = last if last > since else since + timedelta(microseconds=1)
            found.notes.append(
                f"{source.name}: more than {limit} events since {since:%Y-%m-%d %H:%M:%S} "
                f"UTC; {limit} taken this tick, the rest from {resume:%H:%M:%S} UTC next tick"
            )
        found.alerts.extend(source.alerts_of(rows))
        next_cursor[source.name] = max(resume, since).isoformat()
    marks = events.reconnect_marks(limit + 1)
    if len(marks) > limit:
        found.notes.append(
            f"accounts to reconnect: more than {limit} marked; the oldest {limit} are alerted"
        )
    found.alerts.extend(_reconnect(mark) for mark in marks[:limit])
    found.cursor = json.dumps(next_cursor, sort_keys=True)
    return found


def _read_cursor(cursor: str | None) -> dict[str, datetime]:
    """The per-source times of a cursor; an unreadable cursor counts as none."""
    try:
        raw = json.loads(cursor) if cursor else {}
        return {name: datetime.fromisoformat(value) for name, value in raw.items()}
    except (ValueError, TypeError, AttributeError):
        return {}


def _sources(events: EventReads) -> list[_Source]:
    by_update = _updated_at
    return [
        _Source(
            "circuits opened",
            events.circuits_opened,
            lambda event: event.at,
            lambda rows: [_circuit(event) for event in rows],
        ),
        _Source(
            "dead deliveries",
            events.dead_deliveries,
            by_update,
            lambda rows: [_dead(record) for record in rows],
        ),
        _Source(
            "missed deliveries",
            events.missed_deliveries,
            by_update,
            lambda rows: [_missed_delivery(record) for record in rows],
        ),
        _Source(
            "missed posts",
            events.missed_posts,
            lambda record: record.updated_at,
            lambda rows: [alert for record in rows for alert in _missed_post(record)],
        ),
        _Source("quota deferrals", events.quota_deferrals, by_update, _quota),
    ]


def _updated_at(record: DeliveryRecord) -> datetime:
    return record.updated_at


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _line(text: str | None) -> str:
    return summarize(text or "", REASON_LIMIT)


def _circuit(event: CircuitOpened) -> Alert:
    platform, _, account = event.name.partition(":")
    now = "" if event.state_now == "open" else f"; it is {event.state_now} again now"
    return Alert(
        key=f"circuit_open:{event.name}:{_iso(event.at)}",
        kind=AlertKind.CIRCUIT_OPEN,
        severity=Severity.WARNING,
        title=f"Circuit {event.name} opened",
        reason=f"calls to {event.name} failed again and again (timeouts, 5xx, connections "
        "refused), so they fail fast now: runs defer their deliveries and the schedule skips "
        f"the account until a trial call succeeds{now}",
        occurred_at=event.at,
        platform=platform or None,
        account=account or None,
        details={"breaker": event.name, "state_now": event.state_now},
    )


def _reconnect(mark: ReconnectMark) -> Alert:
    return Alert(
        key=f"reconnect_needed:{mark.platform}:{mark.account}:{_iso(mark.marked_at)}",
        kind=AlertKind.RECONNECT_NEEDED,
        severity=Severity.ERROR,
        title=f"Account {mark.account} ({mark.platform}) needs reconnecting",
        reason=f"{_line(mark.reason) or 'its credentials were refused'}; its campaigns and "
        f"posts wait until `social-pipelines accounts connect {mark.account}` succeeds",
        occurred_at=mark.marked_at,
        platform=mark.platform,
        account=mark.account,
    )


def _what(record: DeliveryRecord) -> tuple[str | None, str | None, str]:
    """A delivery's post id and target (a publish), and how a person recognises it."""
    if record.kind == DeliveryKind.PUBLISH:
        post_id, _, target = (record.reference or record.subject).partition("/")
        return post_id, target or record.account, f"post {post_id} to {target or record.account}"
    return None, None, f"reply to {record.subject} by {record.account}"


def _dead(record: DeliveryRecord) -> Alert:
    post_id, target, label = _what(record)
    error_class = error_class_for_kind(record.error_kind or "") or record.error_kind
    retry = post_id or record.delivery_id
    return Alert(
        key=f"delivery_dead:{record.delivery_id}:{record.attempts}",
        kind=AlertKind.DELIVERY_DEAD,
        severity=Severity.ERROR,
        title=f"Dead letter: {label}" + (f" ({error_class})" if error_class else ""),
        reason=f"{_line(record.error) or 'given up'}; after a fix, `social-pipelines retry "
        f"{retry}` looks for it on the platform first and sends it only if it is not there",
        occurred_at=record.updated_at,
        run_id=record.run_id,
        error_class=error_class,
        platform=record.platform,
        account=record.account,
        post_id=post_id,
        target=target,
        delivery_id=record.delivery_id,
        details={"delivery_kind": record.kind, "attempts": record.attempts}
        | ({"campaign": record.campaign} if record.campaign else {}),
    )


def _missed(post_id: str, target: str, reason: str, at: datetime, **more: Any) -> Alert:
    return Alert(
        key=f"post_missed:{post_id}/{target}",
        kind=AlertKind.POST_MISSED,
        severity=Severity.WARNING,
        title=f"Post {post_id} missed for {target}",
        reason=f"{_line(reason) or 'found too late'}; it is not sent unless publish_job runs "
        f"with force_late (post_ids: [{post_id}])",
        occurred_at=at,
        post_id=post_id,
        target=target,
        account=target,
        **more,
    )


def _missed_post(record: PostRecord) -> list[Alert]:
    return [
        _missed(
            record.post_id,
            target,
            record.status_reason or "",
            record.updated_at,
            details={"scheduled_at": _iso(record.post.at)},
        )
        for target in record.post.targets
    ]


def _missed_delivery(record: DeliveryRecord) -> Alert:
    post_id, target, _ = _what(record)
    return _missed(
        post_id or record.subject,
        target or record.account,
        record.error or "",
        record.updated_at,
        platform=record.platform,
        delivery_id=record.delivery_id,
        run_id=record.run_id,
    )


def _quota(rows: Sequence[DeliveryRecord]) -> list[Alert]:
    """One alert per account and UTC day, however many of its deliveries wait."""
    by_day: dict[tuple[str, str, str], list[DeliveryRecord]] = {}
    for record in rows:
        day = record.updated_at.strftime("%Y-%m-%d")
        by_day.setdefault((record.platform, record.account, day), []).append(record)
    alerts = []
    for (platform, account, day), waiting in by_day.items():
        first = waiting[0]
        until = max((r.not_before for r in waiting if r.not_before), default=None)
        when = f" until {until:%Y-%m-%d %H:%M} UTC" if until else ""
        alerts.append(
            Alert(
                key=f"quota_used_up:{platform}:{account}:{day}",
                kind=AlertKind.QUOTA_USED_UP,
                severity=Severity.WARNING,
                title=f"Posting quota used up for {account} ({platform})",
                reason=f"{len(waiting)} deliver{'y waits' if len(waiting) == 1 else 'ies wait'}"
                f"{when}: the account's posting quota (posts per hour or day) is used up; "
                "they go out by themselves when it frees (redeliver_job)",
                occurred_at=first.updated_at,
                run_id=first.run_id,
                error_class="QuotaExhausted",
                platform=platform,
                account=account,
                details={"day": day, "waiting": len(waiting)}
                | ({"until": _iso(until)} if until else {}),
            )
        )
    return alerts
