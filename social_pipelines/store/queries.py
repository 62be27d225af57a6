"""Reading the ledger: what operators, sensors and the reply search ask of it.

Every method is a read on its own connection: it never takes SQLite's write lock, so a
sensor or the `ledger` command never queues behind a run that is sending.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.models import DeliveryState
from social_pipelines.store.records import BY_ID, DeliveryRecord
from social_pipelines.store.schema import UtcDateTime, deliveries, delivery_attempts

_c = deliveries.c
# How many subjects one IN (...) names: well below every backend's parameter limit.
_SUBJECTS_PER_QUERY = 500
# States that wait for a not-before time: deferred ones, and unknown ones settling.
_WAITING = [str(DeliveryState.FAILED), str(DeliveryState.PLANNED), str(DeliveryState.UNKNOWN)]
# Waiting for a not-before time and nothing else: deferred (a quota, a long Retry-After).
_DEFERRABLE = [str(DeliveryState.FAILED), str(DeliveryState.PLANNED)]


@dataclass(frozen=True)
class LedgerOverview:
    """What an operator asks of the ledger at a glance (`doctor`): what waits, what may
    already be out, what was given up."""

    deferred: int  # failed or planned, with a not-before time still ahead
    next_deferred_at: datetime | None
    due: int  # its time has come (or its claimant is gone) and no run holds it
    due_since: datetime | None  # the earliest of those times
    unknown: int  # may have reached the platform: reconciled before any new attempt
    oldest_unknown: datetime | None
    dead: int  # every dead letter
    recent_dead: builtins.list[DeliveryRecord]  # the newest of those dead since the time asked
    recent_dead_count: int  # how many died since then


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
        changed_since: datetime | None = None,
    ) -> builtins.list[DeliveryRecord]:
        """Deliveries in the order they were planned, or with `newest` the most recently
        changed first (what a person looking at the ledger wants to see); with
        `changed_since`, only those changed since then."""
        order = (_c.updated_at.desc(), _c.delivery_id.desc()) if newest else (_c.created_at,)
        query = sa.select(deliveries).order_by(*order).limit(limit)
        if states is not None:
            query = query.where(_c.state.in_([str(s) for s in states]))
        if campaign is not None:
            query = query.where(_c.campaign == campaign)
        if changed_since is not None:
            query = query.where(_c.updated_at >= changed_since)
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

    def overview(
        self, *, dead_since: datetime, due_for: timedelta = timedelta(0), dead_shown: int = 5
    ) -> LedgerOverview:
        """Counts of what waits (deferred; due for at least `due_for` and not taken; unknown)
        and of the dead letters, with the newest `dead_shown` of those dead since
        `dead_since`. A few aggregate reads on one connection."""
        now = self.clock()
        # When a waiting row fell due: its not-before time, else its last change; a sending
        # row's when its claimant's lease ran out.
        due_at = sa.type_coerce(
            sa.case(
                (_c.state == str(DeliveryState.SENDING), _c.lease_until),
                else_=sa.func.coalesce(_c.not_before, _c.updated_at),
            ),
            UtcDateTime(),
        )
        deferred = sa.and_(_c.state.in_(_DEFERRABLE), _c.not_before > now)
        due = sa.and_(
            sa.or_(
                _c.state.in_(_WAITING),
                sa.and_(_c.state == str(DeliveryState.SENDING), _c.lease_until < now),
            ),
            due_at <= now - due_for,
        )
        unknown = _c.state == str(DeliveryState.UNKNOWN)
        dead = _c.state == str(DeliveryState.DEAD)
        recently_dead = sa.and_(dead, _c.updated_at >= dead_since)
        count = sa.func.count()
        with self.engine.connect() as connection:
            deferred_n, next_deferred = connection.execute(
                sa.select(count, sa.func.min(_c.not_before)).where(deferred)
            ).one()
            due_n, due_since = connection.execute(
                sa.select(count, sa.func.min(due_at)).where(due)
            ).one()
            unknown_n, oldest_unknown = connection.execute(
                sa.select(count, sa.func.min(_c.updated_at)).where(unknown)
            ).one()
            dead_n = connection.execute(sa.select(count).where(dead)).scalar_one()
            recent_n = connection.execute(sa.select(count).where(recently_dead)).scalar_one()
            newest = connection.execute(
                sa.select(deliveries)
                .where(recently_dead)
                .order_by(_c.updated_at.desc(), _c.delivery_id.desc())
                .limit(dead_shown)
            )
            recent_dead = [DeliveryRecord.from_row(row) for row in newest]
        return LedgerOverview(
            deferred=deferred_n,
            next_deferred_at=next_deferred,
            due=due_n,
            due_since=due_since,
            unknown=unknown_n,
            oldest_unknown=oldest_unknown,
            dead=dead_n,
            recent_dead=recent_dead,
            recent_dead_count=recent_n,
        )

    def next_due_at(self) -> datetime | None:
        """The earliest not-before time among deferred deliveries and unknown ones waiting
        to settle (for a sensor's message)."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.min(_c.not_before)).where(_c.state.in_(_WAITING))
            ).scalar_one()
