"""The delivery ledger: the record that makes every post and reply happen at most once.

A delivery row moves `planned -> sending -> sent`, or to `failed` (retryable, maybe with a
not-before time), `dead` (permanent, with its reason) or `unknown` (it may have reached the
platform). Every transition is one conditional UPDATE, so two runs racing for the same
delivery cannot both win the claim, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from social_pipelines.errors import SocialError
from social_pipelines.models import DeliveryState, Draft, Published
from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import deliveries, delivery_attempts

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class DeliveryRecord:
    delivery_id: str
    platform: str
    account_key: str
    kind: str
    subject: str
    campaign: str | None
    account: str
    state: DeliveryState
    text: str
    content_hash: str
    remote_id: str | None
    remote_url: str | None
    attempts: int
    not_before: datetime | None
    lease_until: datetime | None
    run_id: str | None
    error_kind: str | None
    status_code: int | None
    error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None

    @classmethod
    def from_row(cls, row: sa.Row) -> DeliveryRecord:
        values = dict(row._mapping)
        values["state"] = DeliveryState(values["state"])
        return cls(**values)

    @property
    def published(self) -> Published | None:
        if self.state != DeliveryState.SENT or self.remote_id is None:
            return None
        return Published(remote_id=self.remote_id, url=self.remote_url or "")


class ClaimResult(StrEnum):
    CLAIMED = "claimed"  # ours to send
    RECONCILE = "reconcile"  # ours, but it may already be out: look before sending
    SENT = "sent"  # done before; return its remote id and URL
    IN_FLIGHT = "in_flight"  # another run holds it right now
    DEFERRED = "deferred"  # not before `record.not_before`
    DEAD = "dead"  # given up, with its reason


@dataclass(frozen=True)
class QuotaRule:
    """At most `limit` posts per account in any `window` (counted from `sent` rows)."""

    limit: int
    window: timedelta


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    record: DeliveryRecord
    attempt: int = 0


# The hot path's statements, built once: building SQLAlchemy expressions (and their cache
# keys) on every call cost more than running them.
_c = deliveries.c
_BY_ID = sa.select(deliveries).where(_c.delivery_id == sa.bindparam("delivery_id"))
_MINE = sa.and_(
    _c.platform == sa.bindparam("platform"),
    _c.account_key == sa.bindparam("account_key"),
    _c.delivery_id != sa.bindparam("delivery_id"),
)
_IN_FLIGHT = sa.select(sa.func.count()).where(
    _MINE, _c.state == str(DeliveryState.SENDING), _c.lease_until >= sa.bindparam("now")
)
_SENT_IN_WINDOW = sa.and_(
    _MINE, _c.state == str(DeliveryState.SENT), _c.sent_at >= sa.bindparam("since")
)
_SENT_COUNT = sa.select(sa.func.count()).where(_SENT_IN_WINDOW)
_UNKNOWN_COUNT = sa.select(sa.func.count()).where(
    _MINE, _c.state == str(DeliveryState.UNKNOWN), _c.updated_at >= sa.bindparam("since")
)
_NTH_SENT = (
    sa.select(_c.sent_at)
    .where(_SENT_IN_WINDOW)
    .order_by(_c.sent_at)
    .limit(1)
    .offset(sa.bindparam("offset", type_=sa.Integer))
)
_TAKE = (
    deliveries.update()
    .where(
        _c.delivery_id == sa.bindparam("b_delivery_id"),
        _c.state == sa.bindparam("from_state"),
        _c.attempts == sa.bindparam("from_attempts"),
    )
    .values(
        state=str(DeliveryState.SENDING),
        attempts=sa.bindparam("to_attempts"),
        lease_until=sa.bindparam("lease_until"),
        run_id=sa.bindparam("b_run_id"),
        updated_at=sa.bindparam("now"),
    )
)
_ATTEMPT_STARTED = delivery_attempts.insert()
_ATTEMPT_FINISHED = (
    delivery_attempts.update()
    .where(
        delivery_attempts.c.delivery_id == sa.bindparam("b_delivery_id"),
        delivery_attempts.c.attempt == sa.bindparam("b_attempt"),
    )
    .values(
        finished_at=sa.bindparam("now"),
        outcome=sa.bindparam("b_outcome"),
        status_code=sa.bindparam("b_status_code"),
        error_kind=sa.bindparam("b_error_kind"),
        error=sa.bindparam("b_error"),
    )
)


class Ledger:
    """Reads and moves delivery rows; every method is its own short transaction."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock

    # -- reading -----------------------------------------------------------------------

    def get(self, delivery_id: str) -> DeliveryRecord | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(deliveries).where(deliveries.c.delivery_id == delivery_id)
            ).first()
        return DeliveryRecord.from_row(row) if row else None

    def states_of_subjects(
        self, platform: str, account_key: str, kind: str, subjects: Iterable[str]
    ) -> dict[str, DeliveryState]:
        """The ledger state of each subject that has a row (e.g. posts already answered)."""
        wanted = list(dict.fromkeys(subjects))
        found: dict[str, DeliveryState] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    sa.select(deliveries.c.subject, deliveries.c.state).where(
                        deliveries.c.platform == platform,
                        deliveries.c.account_key == account_key,
                        deliveries.c.kind == kind,
                        deliveries.c.subject.in_(wanted[start : start + 500]),
                    )
                )
                found.update({row.subject: DeliveryState(row.state) for row in rows})
        return found

    def count_sent(self, platform: str, account_key: str, since: datetime) -> int:
        """Posts sent by an account since a time: quotas are counted here, nowhere else."""
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).where(
                    deliveries.c.platform == platform,
                    deliveries.c.account_key == account_key,
                    deliveries.c.state == DeliveryState.SENT,
                    deliveries.c.sent_at >= since,
                )
            ).scalar_one()

    def list(
        self,
        *,
        states: Iterable[DeliveryState] | None = None,
        campaign: str | None = None,
        limit: int = 1000,
        newest: bool = False,
    ) -> list[DeliveryRecord]:
        """Deliveries in the order they were planned, or with `newest` the most recently
        changed first (what a person looking at the ledger wants to see)."""
        c = deliveries.c
        order = (c.updated_at.desc(), c.delivery_id.desc()) if newest else (c.created_at,)
        query = sa.select(deliveries).order_by(*order).limit(limit)
        if states is not None:
            query = query.where(deliveries.c.state.in_([str(s) for s in states]))
        if campaign is not None:
            query = query.where(deliveries.c.campaign == campaign)
        with self.engine.connect() as connection:
            return [DeliveryRecord.from_row(row) for row in connection.execute(query)]

    def attempts(self, delivery_id: str) -> list[sa.Row]:
        with self.engine.connect() as connection:
            return list(
                connection.execute(
                    sa.select(delivery_attempts)
                    .where(delivery_attempts.c.delivery_id == delivery_id)
                    .order_by(delivery_attempts.c.id)
                )
            )

    # -- moving ------------------------------------------------------------------------

    def plan(self, draft: Draft) -> DeliveryRecord:
        """Record a delivery as planned, unless it exists: then the existing row wins.

        The text stored is the first one planned; a later, different draft of the same
        delivery (a changed template) does not replace what may already be out.
        """
        with self.writer.begin() as connection:
            connection.execute(
                _INSERT_IGNORE[connection.dialect.name], _planned_values(draft, self.clock())
            )
            row = connection.execute(
                sa.select(deliveries).where(deliveries.c.delivery_id == draft.delivery_id)
            ).one()
        return DeliveryRecord.from_row(row)

    def claim(
        self,
        delivery_id: str,
        *,
        run_id: str | None,
        lease: timedelta,
        quotas: Iterable[QuotaRule] = (),
    ) -> Claim:
        """Take a delivery for one send attempt, atomically.

        A planned or due failed row is claimed for sending; an unknown row, or a sending
        row whose claimant's lease ran out (a killed process), is claimed for
        reconciliation first. Anything else is reported as it is. When a posting quota of
        the account is used up (sent rows, sends in flight, unknown outcomes), the row gets
        a not-before time instead and the claim says DEFERRED: quota and claim are one
        transaction, so racing runs cannot overshoot it together.
        """
        with self.writer.begin() as connection:
            return self._claim(connection, delivery_id, run_id, lease, list(quotas))

    def plan_and_claim(
        self,
        draft: Draft,
        *,
        run_id: str | None,
        lease: timedelta,
        quotas: Iterable[QuotaRule] = (),
    ) -> Claim:
        """`plan` then `claim`, in one transaction (one commit less per delivery)."""
        with self.writer.begin() as connection:
            connection.execute(
                _INSERT_IGNORE[connection.dialect.name], _planned_values(draft, self.clock())
            )
            return self._claim(connection, draft.delivery_id, run_id, lease, list(quotas))

    def _claim(
        self,
        connection: sa.Connection,
        delivery_id: str,
        run_id: str | None,
        lease: timedelta,
        quotas: list[QuotaRule],
    ) -> Claim:
        now = self.clock()
        c = deliveries.c
        row = connection.execute(_BY_ID, {"delivery_id": delivery_id}).first()
        if row is None:
            raise KeyError(f"no delivery {delivery_id} in the ledger: plan it first")
        before = DeliveryRecord.from_row(row)
        sendable = before.state in (DeliveryState.PLANNED, DeliveryState.FAILED) and (
            before.not_before is None or before.not_before <= now
        )
        # An unknown row waits out its settle time (its not-before) before anyone looks.
        doubtful = (
            before.state == DeliveryState.UNKNOWN
            and (before.not_before is None or before.not_before <= now)
        ) or (
            before.state == DeliveryState.SENDING
            and before.lease_until is not None
            and before.lease_until < now
        )
        if not (sendable or doubtful):
            return Claim(_why_not_claimed(before, now), before)
        # A doubtful row is reconciled first (a read, posting nothing): its quota is
        # checked after a miss, before anything is sent (`quota_until`).
        if sendable and quotas:
            until = self._locked_quota_until(connection, row, quotas, now)
            if until is not None:
                connection.execute(
                    deliveries.update()
                    .where(c.delivery_id == delivery_id)
                    .values(not_before=until, error_kind="quota_exhausted", updated_at=now)
                )
                deferred = replace(
                    before, not_before=until, error_kind="quota_exhausted", updated_at=now
                )
                return Claim(ClaimResult.DEFERRED, deferred)
        # Conditional on the state read above: under SQLite's write lock nothing changed
        # it, and on PostgreSQL a concurrent claimant makes this match no row.
        result = connection.execute(
            _TAKE,
            {
                "b_delivery_id": delivery_id,
                "from_state": str(before.state),
                "from_attempts": before.attempts,
                "to_attempts": before.attempts + 1,
                "lease_until": now + lease,
                "b_run_id": run_id,
                "now": now,
            },
        )
        if result.rowcount != 1:
            current = connection.execute(_BY_ID, {"delivery_id": delivery_id}).one()
            record = DeliveryRecord.from_row(current)
            return Claim(_why_not_claimed(record, now), record)
        record = replace(
            before,
            state=DeliveryState.SENDING,
            attempts=before.attempts + 1,
            lease_until=now + lease,
            run_id=run_id,
            updated_at=now,
        )
        connection.execute(
            _ATTEMPT_STARTED,
            {
                "delivery_id": delivery_id,
                "attempt": record.attempts,
                "run_id": run_id,
                "started_at": now,
            },
        )
        return Claim(
            ClaimResult.RECONCILE if doubtful else ClaimResult.CLAIMED, record, record.attempts
        )

    def renew_leases(self, run_id: str, lease: timedelta) -> int:
        """The holder is alive: extend the leases of the claims it still holds.

        Only live claims are renewed: one whose lease already ran out may be taken over at
        any moment, and conditional on the holder, so a claim taken over is never touched.
        """
        now = self.clock()
        with self.writer.begin() as connection:
            return connection.execute(
                deliveries.update()
                .where(_live_claims_of(run_id, now))
                .values(lease_until=now + lease)
            ).rowcount

    def release_run(self, run_id: str) -> int:
        """A run is known dead (Dagster marked it failed): end its claims' leases now.

        Its `sending` rows become doubtful at once, so the next attempt reconciles them
        instead of waiting out the lease. Returns how many were released.
        """
        now = self.clock()
        with self.writer.begin() as connection:
            return connection.execute(
                deliveries.update()
                .where(_live_claims_of(run_id, now))
                .values(lease_until=now - timedelta(microseconds=1), updated_at=now)
            ).rowcount

    def quota_until(self, delivery_id: str, quotas: Iterable[QuotaRule]) -> datetime | None:
        """When this delivery's account may post again under `quotas` (None: now)."""
        quotas = list(quotas)
        if not quotas:
            return None
        with self.writer.begin() as connection:
            row = connection.execute(
                sa.select(deliveries).where(deliveries.c.delivery_id == delivery_id)
            ).one()
            return self._locked_quota_until(connection, row, quotas, self.clock())

    def _locked_quota_until(
        self,
        connection: sa.Connection,
        row: sa.Row,
        quotas: Iterable[QuotaRule],
        now: datetime,
    ) -> datetime | None:
        quotas = list(quotas)
        if not quotas:
            return None
        if connection.dialect.name == "postgresql":
            # Serialise quota decisions per account (SQLite's write lock already does).
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"{row.platform}:{row.account_key}"},
            )
        return self._quota_until(connection, row, quotas, now)

    def _quota_until(
        self,
        connection: sa.Connection,
        row: sa.Row,
        quotas: Iterable[QuotaRule],
        now: datetime,
    ) -> datetime | None:
        """When the account may post again, or None if it may post now.

        Used are: posts sent in the window, sends in flight, and unknown outcomes of the
        window (they may well have landed).
        """
        mine = {
            "platform": row.platform,
            "account_key": row.account_key,
            "delivery_id": row.delivery_id,
        }
        in_flight = connection.execute(_IN_FLIGHT, {**mine, "now": now}).scalar_one()
        latest: datetime | None = None
        for rule in quotas:
            window = {**mine, "since": now - rule.window}
            sent = connection.execute(_SENT_COUNT, window).scalar_one()
            unknown = connection.execute(_UNKNOWN_COUNT, window).scalar_one()
            used = sent + in_flight + unknown
            if used < rule.limit:
                continue
            # The window frees when enough of the sent rows have aged out of it; sends in
            # flight and unknown ones age out no sooner than the newest sent row.
            free_index = min(used - rule.limit, max(sent - 1, 0))
            oldest_to_free = connection.execute(
                _NTH_SENT, {**window, "offset": free_index}
            ).scalar()
            frees_at = (oldest_to_free or now) + rule.window
            latest = frees_at if latest is None else max(latest, frees_at)
        return latest

    def defer(self, delivery_id: str, until: datetime, reason: str) -> DeliveryRecord:
        """Give a not-yet-sent delivery a not-before time (a long wait, an open circuit)."""
        now = self.clock()
        c = deliveries.c
        with self.writer.begin() as connection:
            connection.execute(
                deliveries.update()
                .where(
                    c.delivery_id == delivery_id,
                    c.state.in_([str(DeliveryState.PLANNED), str(DeliveryState.FAILED)]),
                )
                .values(not_before=until, error_kind=reason, updated_at=now)
            )
            row = connection.execute(
                sa.select(deliveries).where(c.delivery_id == delivery_id)
            ).one()
        return DeliveryRecord.from_row(row)

    def due(self, *, limit: int = 500) -> list[DeliveryRecord]:
        """Deliveries a later run must finish: failed ones whose time has come, unknown
        ones, and sending ones whose claimant is gone."""
        now = self.clock()
        c = deliveries.c
        query = (
            sa.select(deliveries)
            .where(
                sa.or_(
                    sa.and_(
                        c.state.in_([str(DeliveryState.FAILED), str(DeliveryState.PLANNED)]),
                        sa.or_(c.not_before.is_(None), c.not_before <= now),
                    ),
                    sa.and_(
                        c.state == str(DeliveryState.UNKNOWN),
                        sa.or_(c.not_before.is_(None), c.not_before <= now),
                    ),
                    sa.and_(c.state == str(DeliveryState.SENDING), c.lease_until < now),
                )
            )
            .order_by(c.created_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [DeliveryRecord.from_row(row) for row in connection.execute(query)]

    def next_due_at(self) -> datetime | None:
        """The earliest not-before time among deferred deliveries and unknown ones waiting
        to settle (for a sensor's message)."""
        c = deliveries.c
        waiting = [
            str(DeliveryState.FAILED),
            str(DeliveryState.PLANNED),
            str(DeliveryState.UNKNOWN),
        ]
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.min(c.not_before)).where(c.state.in_(waiting))
            ).scalar_one()

    def record_sent(
        self,
        delivery_id: str,
        attempt: int,
        published: Published,
        *,
        outcome: str = "sent",
    ) -> DeliveryRecord:
        now = self.clock()
        return self._finish(
            delivery_id,
            attempt,
            outcome=outcome,
            values={
                "state": str(DeliveryState.SENT),
                "remote_id": published.remote_id,
                "remote_url": published.url,
                "sent_at": now,
                "not_before": None,
                "lease_until": None,
                "error_kind": None,
                "status_code": None,
                "error": None,
            },
        )

    def record_error(
        self,
        delivery_id: str,
        attempt: int,
        error: SocialError,
        *,
        state: DeliveryState,
        not_before: datetime | None = None,
        outcome: str | None = None,
    ) -> DeliveryRecord:
        """Close an attempt that did not end in `sent`: failed, unknown or dead."""
        if state not in (DeliveryState.FAILED, DeliveryState.UNKNOWN, DeliveryState.DEAD):
            raise ValueError(f"record_error cannot move a delivery to {state}")
        return self._finish(
            delivery_id,
            attempt,
            outcome=outcome or str(state),
            status_code=error.status_code,
            error_kind=error.kind,
            error=error.full_text,
            values={
                "state": str(state),
                "not_before": not_before,
                "lease_until": None,
                "error_kind": error.kind,
                "status_code": error.status_code,
                "error": error.full_text,
            },
        )

    def _finish(
        self,
        delivery_id: str,
        attempt: int,
        *,
        outcome: str,
        values: dict[str, object],
        status_code: int | None = None,
        error_kind: str | None = None,
        error: str | None = None,
    ) -> DeliveryRecord:
        now = self.clock()
        with self.writer.begin() as connection:
            row = connection.execute(
                _finish_statement(tuple(sorted(values))),
                {
                    "b_delivery_id": delivery_id,
                    "b_attempts": attempt,
                    "updated_at": now,
                    **{f"v_{name}": value for name, value in values.items()},
                },
            ).first()
            connection.execute(
                _ATTEMPT_FINISHED,
                {
                    "b_delivery_id": delivery_id,
                    "b_attempt": attempt,
                    "now": now,
                    "b_outcome": outcome if row is not None else f"superseded:{outcome}",
                    "b_status_code": status_code,
                    "b_error_kind": error_kind,
                    "b_error": error,
                },
            )
            if row is None:
                row = connection.execute(_BY_ID, {"delivery_id": delivery_id}).one()
        return DeliveryRecord.from_row(row)


def _live_claims_of(run_id: str, now: datetime) -> sa.ColumnElement[bool]:
    """The claims a run holds and whose lease has not run out."""
    return sa.and_(
        _c.state == str(DeliveryState.SENDING), _c.run_id == run_id, _c.lease_until >= now
    )


@functools.cache
def _finish_statement(columns: tuple[str, ...]) -> sa.Executable:
    """Close the claimant's attempt, setting `columns`; one statement per column set.

    Only the claimant of this attempt may close it: a run whose lease ran out and whose
    row was taken over must not overwrite the newer attempt's outcome. RETURNING (SQLite
    3.35+, PostgreSQL) hands back the row in the same statement.
    """
    return (
        deliveries.update()
        .where(
            _c.delivery_id == sa.bindparam("b_delivery_id"),
            _c.attempts == sa.bindparam("b_attempts"),
            _c.state == str(DeliveryState.SENDING),
        )
        .values(
            updated_at=sa.bindparam("updated_at"),
            **{name: sa.bindparam(f"v_{name}") for name in columns},
        )
        .returning(*deliveries.c)
    )


def _planned_values(draft: Draft, now: datetime) -> dict[str, object]:
    return {
        "delivery_id": draft.delivery_id,
        "platform": draft.platform,
        "account_key": draft.account_key,
        "kind": str(draft.kind),
        "subject": draft.subject,
        "campaign": draft.campaign,
        "account": draft.account,
        "state": str(DeliveryState.PLANNED),
        "text": draft.text,
        "content_hash": content_hash(draft.text),
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _why_not_claimed(record: DeliveryRecord, now: datetime) -> ClaimResult:
    if record.state == DeliveryState.SENT:
        return ClaimResult.SENT
    if record.state == DeliveryState.DEAD:
        return ClaimResult.DEAD
    if record.state == DeliveryState.SENDING:
        return ClaimResult.IN_FLIGHT
    return ClaimResult.DEFERRED


def _insert_ignore_statement(dialect: str) -> sa.Executable:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(deliveries).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(deliveries).on_conflict_do_nothing()


_INSERT_IGNORE = {name: _insert_ignore_statement(name) for name in ("postgresql", "sqlite")}
