"""The alert outbox: one row per event, and its delivery to each sink.

The SQL behind `alerts/`. An alert is recorded once, keyed by the identity of the event it
announces (a failed run's id, a circuit's name and the time it opened, ...): recording it
again (a second tick, a second sensor process, a retried step) is an insert that finds the
row there and does nothing. Each sink's delivery moves like a ledger row, by conditional
UPDATEs (`transitions.py`'s style): `pending -> sending` is a claim one process wins, with a
lease; `sending -> sent`, or `-> failed` with the next attempt's time (backoff), by the
claimant only. A per-sink rate limit is counted from the sends of the last minute in the
same transaction as the claim, so racing processes cannot overshoot it together.

Nothing is deleted: an alert no sink took stays here, with its attempts and last error,
and `undelivered()` lists it (what `doctor` shows).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import alert_deliveries, alerts
from social_pipelines.store.sql import insert_missing

_a = alerts.c
_d = alert_deliveries.c
_KEYS_PER_QUERY = 500
RATE_WINDOW = timedelta(minutes=1)


class AlertState(StrEnum):
    PENDING = "pending"  # recorded, not tried yet
    SENDING = "sending"  # claimed by one process until its claim lapses
    SENT = "sent"
    FAILED = "failed"  # tried and failed; tried again from next_attempt_at


_WAITING = [str(AlertState.PENDING), str(AlertState.FAILED)]


@dataclass(frozen=True)
class AlertRow:
    """An alert as stored: what identifies it, a few columns to list it by, and `payload`,
    the JSON its sinks are sent."""

    key: str
    kind: str
    severity: str
    title: str
    payload: str
    occurred_at: datetime

    @classmethod
    def from_row(cls, row: sa.Row) -> AlertRow:
        return cls(
            key=row.alert_key,
            kind=row.kind,
            severity=row.severity,
            title=row.title,
            payload=row.payload,
            occurred_at=row.occurred_at,
        )


@dataclass(frozen=True)
class SinkDelivery:
    """One alert's delivery to one sink."""

    key: str
    sink: str
    state: AlertState
    attempts: int
    next_attempt_at: datetime
    last_error_class: str | None
    last_error: str | None
    sent_at: datetime | None
    updated_at: datetime

    @classmethod
    def from_row(cls, row: sa.Row) -> SinkDelivery:
        return cls(
            key=row.alert_key,
            sink=row.sink,
            state=AlertState(row.state),
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_error_class=row.last_error_class,
            last_error=row.last_error,
            sent_at=row.sent_at,
            updated_at=row.updated_at,
        )


@dataclass(frozen=True)
class UndeliveredAlert:
    """An alert a sink has not taken (yet): what `doctor` lists."""

    alert: AlertRow
    delivery: SinkDelivery
    created_at: datetime

    def described(self) -> str:
        """One line: the sink, the alert, its attempts and why the last one failed."""
        d = self.delivery
        tried = (
            f"{d.attempts} attempt(s), last {d.last_error_class}: {d.last_error}; next "
            f"{d.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
            if d.attempts
            else f"not tried yet (due {d.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
        return f"{d.sink}: [{self.alert.severity}] {self.alert.title} ({self.alert.key}): {tried}"


@dataclass(frozen=True)
class SinkClaim:
    """What one claim for a sink got: an alert to send (with its attempt number), or none,
    and then how many due alerts the rate limit holds back and until when."""

    alert: AlertRow | None = None
    attempt: int = 0
    held_by_rate: int = 0
    rate_frees_at: datetime | None = None


class AlertOutbox:
    """Records alerts and moves their deliveries; every method is its own transaction."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock

    # -- recording -------------------------------------------------------------------------

    def known(self, keys: Iterable[str]) -> set[str]:
        """Which of `keys` are recorded already (a read: a tick that finds nothing new
        writes nothing)."""
        wanted = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), _KEYS_PER_QUERY):
                chunk = wanted[start : start + _KEYS_PER_QUERY]
                found.update(
                    connection.execute(
                        sa.select(_a.alert_key).where(_a.alert_key.in_(chunk))
                    ).scalars()
                )
        return found

    def record(self, rows: Sequence[AlertRow], sinks: Sequence[str]) -> list[str]:
        """Record each alert unless its key is there, with a pending delivery to each of
        `sinks`; returns the keys this call recorded (the others were known)."""
        if not sinks:
            raise ValueError("an alert is recorded for at least one sink (log, when none)")
        known = self.known(row.key for row in rows)
        fresh = [row for row in rows if row.key not in known]
        recorded: list[str] = []
        now = self.clock()
        for row in fresh:
            with self.writer.begin() as connection:
                inserted = insert_missing(
                    connection,
                    alerts,
                    {
                        "alert_key": row.key,
                        "kind": row.kind,
                        "severity": row.severity,
                        "title": row.title,
                        "payload": row.payload,
                        "occurred_at": row.occurred_at,
                        "created_at": now,
                    },
                )
                if not inserted:
                    continue  # another process recorded it a moment ago
                for sink in dict.fromkeys(sinks):
                    connection.execute(
                        alert_deliveries.insert().values(
                            alert_key=row.key,
                            sink=sink,
                            state=str(AlertState.PENDING),
                            attempts=0,
                            next_attempt_at=now,
                            updated_at=now,
                        )
                    )
                recorded.append(row.key)
        return recorded

    # -- delivering ------------------------------------------------------------------------

    def claim_next(
        self,
        sink: str,
        owner: str,
        *,
        lease: timedelta,
        rate_per_minute: int | None = None,
    ) -> SinkClaim:
        """Claim the sink's next due alert for `owner` until `lease` passes: the oldest
        due pending or failed one, or one whose claimant's lease lapsed (it died sending).

        With `rate_per_minute`, nothing is claimed while the sink had that many sends in
        the last minute (claims in flight included): the claim says how many due alerts
        wait and when the window frees. They are never dropped; a later call sends them.
        """
        now = self.clock()
        with self.writer.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                    {"key": f"alert_sink:{sink}"},
                )
            if rate_per_minute is not None:
                held = _rate_held(connection, sink, rate_per_minute, now)
                if held is not None:
                    return held
            row = connection.execute(
                sa.select(_d.alert_key, _d.state, _d.attempts)
                .where(_d.sink == sink, _due(now))
                .order_by(_d.next_attempt_at, _d.alert_key)
                .limit(1)
            ).first()
            if row is None:
                return SinkClaim()
            taken = connection.execute(
                alert_deliveries.update()
                .where(
                    _d.alert_key == row.alert_key,
                    _d.sink == sink,
                    _d.state == row.state,
                    _d.attempts == row.attempts,
                )
                .values(
                    state=str(AlertState.SENDING),
                    attempts=row.attempts + 1,
                    claim_owner=owner,
                    claim_until=now + lease,
                    updated_at=now,
                )
            ).rowcount
            if taken != 1:
                return SinkClaim()  # another claimant won it: the next call takes the next
            alert = connection.execute(sa.select(alerts).where(_a.alert_key == row.alert_key))
            return SinkClaim(alert=AlertRow.from_row(alert.one()), attempt=row.attempts + 1)

    def record_sent(self, key: str, sink: str, owner: str) -> bool:
        """The sink took the alert. False when `owner` no longer held the claim (it lapsed
        and another process took it over: then it may be sent twice, never lost)."""
        now = self.clock()
        return self._finish(
            key,
            sink,
            owner,
            state=str(AlertState.SENT),
            sent_at=now,
            last_error_class=None,
            last_error=None,
        )

    def record_failed(
        self,
        key: str,
        sink: str,
        owner: str,
        *,
        error_class: str,
        error: str,
        next_attempt_at: datetime,
    ) -> bool:
        """The attempt failed: kept, and tried again from `next_attempt_at`."""
        return self._finish(
            key,
            sink,
            owner,
            state=str(AlertState.FAILED),
            next_attempt_at=next_attempt_at,
            last_error_class=error_class,
            last_error=error,
        )

    def _finish(self, key: str, sink: str, owner: str, **values: object) -> bool:
        with self.writer.begin() as connection:
            return (
                connection.execute(
                    alert_deliveries.update()
                    .where(
                        _d.alert_key == key,
                        _d.sink == sink,
                        _d.state == str(AlertState.SENDING),
                        _d.claim_owner == owner,
                    )
                    .values(claim_owner=None, claim_until=None, updated_at=self.clock(), **values)
                ).rowcount
                == 1
            )

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> AlertRow | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(alerts).where(_a.alert_key == key)).first()
        return AlertRow.from_row(row) if row else None

    def deliveries(self, key: str) -> builtins.list[SinkDelivery]:
        """The alert's delivery to each sink it was recorded for."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(alert_deliveries).where(_d.alert_key == key).order_by(_d.sink)
            )
            return [SinkDelivery.from_row(row) for row in rows]

    def list(self, *, limit: int = 200) -> builtins.list[AlertRow]:
        """The newest alerts first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(alerts).order_by(_a.created_at.desc(), _a.alert_key).limit(limit)
            )
            return [AlertRow.from_row(row) for row in rows]

    def undelivered(self, *, limit: int = 200) -> builtins.list[UndeliveredAlert]:
        """Every alert a sink has not taken yet, oldest first: not tried yet, being sent,
        or failed and waiting for its next attempt (with the last error). What `doctor`
        reports; `undelivered_count()` says how many there are beyond `limit`."""
        query = (
            sa.select(alerts, *[c for c in alert_deliveries.c if c.name != "alert_key"])
            .join(alert_deliveries, _d.alert_key == _a.alert_key)
            .where(_d.state != str(AlertState.SENT))
            .order_by(_a.created_at, _a.alert_key, _d.sink)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                UndeliveredAlert(
                    alert=AlertRow.from_row(row),
                    delivery=SinkDelivery.from_row(row),
                    created_at=row.created_at,
                )
                for row in connection.execute(query)
            ]

    def undelivered_count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count())
                .select_from(alert_deliveries)
                .where(_d.state != str(AlertState.SENT))
            ).scalar_one()

    def waiting(self, sink: str) -> tuple[int, datetime | None]:
        """How many of the sink's alerts are not sent, and the earliest next attempt."""
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(sa.func.count(), sa.func.min(_d.next_attempt_at)).where(
                    _d.sink == sink, _d.state.in_(_WAITING)
                )
            ).one()
        return int(row[0]), row[1]


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(_d.state.in_(_WAITING), _d.next_attempt_at <= now),
        sa.and_(_d.state == str(AlertState.SENDING), _d.claim_until < now),
    )


def _rate_held(
    connection: sa.Connection, sink: str, rate_per_minute: int, now: datetime
) -> SinkClaim | None:
    """A claim that holds back the sink's due alerts when its last minute is full; None
    when there is room."""
    since = now - RATE_WINDOW
    sent = connection.execute(
        sa.select(sa.func.count()).where(_d.sink == sink, _d.sent_at >= since)
    ).scalar_one()
    in_flight = connection.execute(
        sa.select(sa.func.count()).where(
            _d.sink == sink, _d.state == str(AlertState.SENDING), _d.claim_until >= now
        )
    ).scalar_one()
    if sent + in_flight < rate_per_minute:
        return None
    due = connection.execute(
        sa.select(sa.func.count()).where(_d.sink == sink, _due(now))
    ).scalar_one()
    oldest = connection.execute(
        sa.select(sa.func.min(_d.sent_at)).where(_d.sink == sink, _d.sent_at >= since)
    ).scalar()
    return SinkClaim(held_by_rate=due, rate_frees_at=(oldest or now) + RATE_WINDOW)
