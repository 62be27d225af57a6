"""Reading the ledger: what operators, sensors and the reply search ask of it.

Every method is a read on its own connection: it never takes SQLite's write lock, so a
sensor or the `ledger` command never queues behind a run that is sending.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.models import DeliveryState
from social_pipelines.store.records import BY_ID, DeliveryRecord
from social_pipelines.store.schema import deliveries, delivery_attempts

_c = deliveries.c
# How many subjects one IN (...) names: well below every backend's parameter limit.
_SUBJECTS_PER_QUERY = 500
# States that wait for a not-before time: deferred ones, and unknown ones settling.
_WAITING = [str(DeliveryState.FAILED), str(DeliveryState.PLANNED), str(DeliveryState.UNKNOWN)]


class DeliveryQueries:
    """Read-only questions about deliveries; `clock` says what "due" means now."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.clock = clock

    def get(self, delivery_id: str) -> DeliveryRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(BY_ID, {"delivery_id": delivery_id}).first()
        return DeliveryRecord.from_row(row) if row else None

    def states_of_subjects(
        self, platform: str, account_key: str, kind: str, subjects: Iterable[str]
    ) -> dict[str, DeliveryState]:
        """The ledger state of each subject that has a row (e.g. posts already answered)."""
        wanted = list(dict.fromkeys(subjects))
        found: dict[str, DeliveryState] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), _SUBJECTS_PER_QUERY):
                rows = connection.execute(
                    sa.select(_c.subject, _c.state).where(
                        _c.platform == platform,
                        _c.account_key == account_key,
                        _c.kind == kind,
                        _c.subject.in_(wanted[start : start + _SUBJECTS_PER_QUERY]),
                    )
                )
                found.update({row.subject: DeliveryState(row.state) for row in rows})
        return found

    def list(
        self,
        *,
        states: Iterable[DeliveryState] | None = None,
        campaign: str | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> builtins.list[DeliveryRecord]:
        """Deliveries in the order they were planned, or with `newest` the most recently
        changed first (what a person looking at the ledger wants to see)."""
        order = (_c.updated_at.desc(), _c.delivery_id.desc()) if newest else (_c.created_at,)
        query = sa.select(deliveries).order_by(*order).limit(limit)
        if states is not None:
            query = query.where(_c.state.in_([str(s) for s in states]))
        if campaign is not None:
            query = query.where(_c.campaign == campaign)
        with self.engine.connect() as connection:
            return [DeliveryRecord.from_row(row) for row in connection.execute(query)]

    def attempts(self, delivery_id: str) -> builtins.list[sa.Row]:
        """Every attempt at a delivery, oldest first, with how each one ended."""
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id == delivery_id)
                    .order_by(delivery_attempts.c.id)
                )
            )

    def due(self, *, limit: int = 500) -> builtins.list[DeliveryRecord]:
        """Deliveries a later run must finish: failed ones whose time has come, unknown
        ones, and sending ones whose claimant is gone."""
        now = self.clock()
        has_come = sa.or_(_c.not_before.is_(None), _c.not_before <= now)
        query = (
            sa.select(deliveries)
            .where(
                sa.or_(
                    sa.and_(_c.state.in_(_WAITING), has_come),
                    sa.and_(_c.state == str(DeliveryState.SENDING), _c.lease_until < now),
                )
            )
            .order_by(_c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [DeliveryRecord.from_row(row) for row in connection.execute(query)]

    def remote_ids_since(
        self, platform: str, account_key: str, since: datetime, *, besides: str
    ) -> frozenset[str]:
        """The remote ids the account's other deliveries were recorded with since then:
        posts that belong to them, so reconciling `besides` never takes one (two publishes
        of the same text to one account are two posts)."""
        query = sa.select(_c.remote_id).where(
            _c.platform == platform,
            _c.account_key == account_key,
            _c.state == str(DeliveryState.SENT),
            _c.sent_at >= since,
            _c.delivery_id != besides,
            _c.remote_id.is_not(None),
        )
        with self.engine.connect() as connection:
            return frozenset(row.remote_id for row in connection.execute(query))

    def next_due_at(self) -> datetime | None:
        """The earliest not-before time among deferred deliveries and unknown ones waiting
        to settle (for a sensor's message)."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.min(_c.not_before)).where(_c.state.in_(_WAITING))
            ).scalar_one()
