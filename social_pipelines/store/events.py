"""What the alerts sensor looks for in the state store: the events people must hear about.

Reads only, each bounded by a time (`since`, inclusive) and a row limit, oldest first, so
a caller can go on from the last row it saw; `alerts/detect.py` turns them into alerts.

- a circuit that opened: a `breaker_events` row moving to open from anything but half-open
  (a failed trial call re-opens the same outage; it is not a new one);
- a delivery dead-lettered: a `dead` ledger row;
- a post missed: an outbox post marked missed, or a publish delivery withdrawn as missed;
- a posting quota used up: a waiting delivery deferred with `quota_exhausted`;
- an account to reconnect: an `account_tokens` row marked `reconnect_needed` (one per
  account, so read whole, never its tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from pybreaker import STATE_HALF_OPEN, STATE_OPEN

from social_pipelines.models import DeliveryState
from social_pipelines.store.outbox import OutboxStatus, PostRecord
from social_pipelines.store.records import DeliveryRecord
from social_pipelines.store.schema import (
    account_tokens,
    breaker_events,
    circuit_breakers,
    deliveries,
    posts,
)
from social_pipelines.store.tokens import RECONNECT_NEEDED

_d = deliveries.c
_e = breaker_events.c


@dataclass(frozen=True)
class CircuitOpened:
    name: str  # platform:account, or llm:model
    at: datetime
    state_now: str  # the circuit's state when read (it may have closed again)
    fail_counter: int


@dataclass(frozen=True)
class ReconnectMark:
    platform: str
    account: str
    reason: str
    marked_at: datetime


class EventReads:
    """The reads behind the alerts sensor, on one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def circuits_opened(self, since: datetime, limit: int) -> list[CircuitOpened]:
        query = (
            sa.select(
                _e.name,
                _e.at,
                circuit_breakers.c.state,
                circuit_breakers.c.fail_counter,
            )
            .join(circuit_breakers, circuit_breakers.c.name == _e.name, isouter=True)
            .where(
                _e.to_state == STATE_OPEN,
                sa.or_(_e.from_state.is_(None), _e.from_state != STATE_HALF_OPEN),
                _e.at >= since,
            )
            .order_by(_e.at, _e.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                CircuitOpened(row.name, row.at, row.state or STATE_OPEN, row.fail_counter or 0)
                for row in connection.execute(query)
            ]

    def _deliveries(
        self, where: sa.ColumnElement[bool], since: datetime, limit: int
    ) -> list[DeliveryRecord]:
        query = (
            sa.select(deliveries)
            .where(where, _d.updated_at >= since)
            .order_by(_d.updated_at, _d.delivery_id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [DeliveryRecord.from_row(row) for row in connection.execute(query)]

    def dead_deliveries(self, since: datetime, limit: int) -> list[DeliveryRecord]:
        return self._deliveries(_d.state == str(DeliveryState.DEAD), since, limit)

    def missed_deliveries(self, since: datetime, limit: int) -> list[DeliveryRecord]:
        """Publish deliveries withdrawn as too late (`kind` missed) when they were sent."""
        return self._deliveries(
            sa.and_(_d.state == str(DeliveryState.CANCELLED), _d.error_kind == "missed"),
            since,
            limit,
        )

    def quota_deferrals(self, since: datetime, limit: int) -> list[DeliveryRecord]:
        """Deliveries waiting because a posting quota is used up (ours or the platform's)."""
        return self._deliveries(
            sa.and_(
                _d.state.in_([str(DeliveryState.PLANNED), str(DeliveryState.FAILED)]),
                _d.error_kind == "quota_exhausted",
            ),
            since,
            limit,
        )

    def missed_posts(self, since: datetime, limit: int) -> list[PostRecord]:
        query = (
            sa.select(posts)
            .where(posts.c.status == str(OutboxStatus.MISSED), posts.c.updated_at >= since)
            .order_by(posts.c.updated_at, posts.c.post_id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [PostRecord.from_row(row) for row in connection.execute(query)]

    def reconnect_marks(self, limit: int) -> list[ReconnectMark]:
        t = account_tokens.c
        query = (
            sa.select(t.platform, t.account, t.reason, t.marked_at)
            .where(t.state == RECONNECT_NEEDED)
            .order_by(t.marked_at, t.platform, t.account)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                ReconnectMark(row.platform, row.account, row.reason or "", row.marked_at)
                for row in connection.execute(query)
                if row.marked_at is not None
            ]
