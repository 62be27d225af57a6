"""Moving delivery rows: the state machine that makes every post happen at most once.

A delivery row moves `planned -> sending -> sent`, or to `failed` (retryable, maybe with a
not-before time), `dead` (permanent, with its reason) or `unknown` (it may have reached the
platform). Every transition is one conditional UPDATE, so two runs racing for the same
delivery cannot both win the claim, on SQLite or PostgreSQL alike.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import SocialError
from social_pipelines.models import DeliveryState, Draft, Published, content_hash
from social_pipelines.store.engine import for_writing
from social_pipelines.store.quotas import QuotaRule, locked_quota_until
from social_pipelines.store.records import (
    BY_ID,
    Claim,
    ClaimResult,
    DeliveryRecord,
    RemoteIdTaken,
)
from social_pipelines.store.schema import deliveries, delivery_attempts
from social_pipelines.store.sql import insert_missing

# The hot path's statements, built once: building SQLAlchemy expressions (and their cache
# keys) on every call cost more than running them.
_c = deliveries.c
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


class DeliveryTransitions:
    """Moves delivery rows; every method is its own short writing transaction."""

    def __init__(self, engine: sa.Engine, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock

    def plan(self, draft: Draft) -> DeliveryRecord:
        """Record a delivery as planned, unless it exists: then the existing row wins.

        The text stored is the first one planned; a later, different draft of the same
        delivery (a changed template) does not replace what may already be out.
        """
        with self.writer.begin() as connection:
            insert_missing(connection, deliveries, _planned_values(draft, self.clock()))
            row = connection.execute(BY_ID, {"delivery_id": draft.delivery_id}).one()
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
            insert_missing(connection, deliveries, _planned_values(draft, self.clock()))
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
        row = connection.execute(BY_ID, {"delivery_id": delivery_id}).first()
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
            return Claim(_why_not_claimed(before), before)
        # A doubtful row is reconciled first (a read, posting nothing): its quota is
        # checked after a miss, before anything is sent (`quota_until`).
        if sendable and quotas:
            until = _quota_until(connection, before, quotas, now)
            if until is not None:
                connection.execute(
                    deliveries.update()
                    .where(_c.delivery_id == delivery_id)
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
            current = connection.execute(BY_ID, {"delivery_id": delivery_id}).one()
            record = DeliveryRecord.from_row(current)
            return Claim(_why_not_claimed(record), record)
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

    def quota_until(self, delivery_id: str, quotas: Iterable[QuotaRule]) -> datetime | None:
        """When this delivery's account may post again under `quotas` (None: now).

        For a claim won for reconciliation: a miss may send, but only within the quota.
        """
        quotas = list(quotas)
        if not quotas:
            return None
        with self.writer.begin() as connection:
            row = connection.execute(BY_ID, {"delivery_id": delivery_id}).one()
            return _quota_until(connection, DeliveryRecord.from_row(row), quotas, self.clock())

    def record_staged(self, delivery_id: str, run_id: str, staged_id: str) -> DeliveryRecord | None:
        """Remember what the current attempt made on the platform before its final call
        (an uploaded media id, a record key, a container id), so that a later attempt
        reuses it instead of making it again.

        Only the holder of a live claim may: conditional on `run_id` holding the row in
        `sending` with its lease still running. Returns the updated row, or None when
        `run_id` does not hold the claim (it lapsed and may have been taken over, or the
        attempt was closed): like a lost claim race, an answer and not an error, and the
        caller must stop working on the delivery.
        """
        now = self.clock()
        with self.writer.begin() as connection:
            row = connection.execute(
                deliveries.update()
                .where(_c.delivery_id == delivery_id, _live_claims_of(run_id, now))
                .values(staged_id=staged_id, updated_at=now)
                .returning(*deliveries.c)
            ).first()
        return DeliveryRecord.from_row(row) if row is not None else None

    def record_text(self, delivery_id: str, run_id: str, text: str) -> DeliveryRecord | None:
        """Store the text the current attempt is about to create, when it differs from the
        planned one (a post edited after it was planned): reconciliation looks for what was
        sent, never for an older text. Only the holder of a live claim may (see
        `record_staged`); None when it does not hold the claim."""
        now = self.clock()
        with self.writer.begin() as connection:
            row = connection.execute(
                deliveries.update()
                .where(_c.delivery_id == delivery_id, _live_claims_of(run_id, now))
                .values(text=text, content_hash=content_hash(text), updated_at=now)
                .returning(*deliveries.c)
            ).first()
        return DeliveryRecord.from_row(row) if row is not None else None

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

    def defer(self, delivery_id: str, until: datetime, reason: str) -> DeliveryRecord:
        """Give a delivery nobody holds (planned or failed) a not-before time.

        For a delivery outside any claim (an operator's hold, a test's setup); an attempt
        that holds its claim defers through `record_error` with a `not_before` instead.
        A row in any other state is returned unchanged.
        """
        now = self.clock()
        with self.writer.begin() as connection:
            connection.execute(
                deliveries.update()
                .where(
                    _c.delivery_id == delivery_id,
                    _c.state.in_([str(DeliveryState.PLANNED), str(DeliveryState.FAILED)]),
                )
                .values(not_before=until, error_kind=reason, updated_at=now)
            )
            row = connection.execute(BY_ID, {"delivery_id": delivery_id}).one()
        return DeliveryRecord.from_row(row)

    def record_sent(
        self,
        delivery_id: str,
        attempt: int,
        published: Published,
        *,
        outcome: str = "sent",
    ) -> DeliveryRecord:
        """Record the delivery as out; RemoteIdTaken (nothing recorded) when that post is
        another delivery's already."""
        now = self.clock()
        try:
            return self._record_sent(delivery_id, attempt, published, outcome, now)
        except IntegrityError as error:
            raise RemoteIdTaken(
                f"{published.remote_id} is recorded for another delivery of the account"
            ) from error

    def _record_sent(
        self,
        delivery_id: str,
        attempt: int,
        published: Published,
        outcome: str,
        now: datetime,
    ) -> DeliveryRecord:
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

    def make_due_again(self, delivery_id: str) -> DeliveryRecord | None:
        """Give a dead or failed delivery another go, by hand (`retry`): it becomes unknown,
        so the next attempt reconciles before it sends (a dead delivery may have gone out
        after all: a create rejected by a proxy, a timeout taken for a failure), and its
        attempts count anew. None when it is in no such state."""
        now = self.clock()
        with self.writer.begin() as connection:
            row = connection.execute(
                deliveries.update()
                .where(
                    _c.delivery_id == delivery_id,
                    _c.state.in_([str(DeliveryState.DEAD), str(DeliveryState.FAILED)]),
                )
                .values(
                    state=str(DeliveryState.UNKNOWN),
                    not_before=None,
                    lease_until=None,
                    attempt_base=_c.attempts,
                    updated_at=now,
                )
                .returning(*deliveries.c)
            ).first()
        return DeliveryRecord.from_row(row) if row else None

    def record_cancelled(
        self, delivery_id: str, attempt: int, reason: str, *, kind: str = "cancelled"
    ) -> DeliveryRecord:
        """Close an attempt whose delivery was withdrawn before it was sent (the post was
        cancelled, or `kind` missed: too late to go): it is never sent, and stays visible
        with the reason."""
        return self._finish(
            delivery_id,
            attempt,
            outcome=str(DeliveryState.CANCELLED),
            error=reason,
            values={
                "state": str(DeliveryState.CANCELLED),
                "not_before": None,
                "lease_until": None,
                "error_kind": kind,
                "status_code": None,
                "error": reason,
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
                row = connection.execute(BY_ID, {"delivery_id": delivery_id}).one()
        return DeliveryRecord.from_row(row)


def _quota_until(
    connection: sa.Connection, record: DeliveryRecord, quotas: list[QuotaRule], now: datetime
) -> datetime | None:
    return locked_quota_until(
        connection,
        platform=record.platform,
        account_key=record.account_key,
        delivery_id=record.delivery_id,
        quotas=quotas,
        now=now,
    )


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
        "reference": draft.reference,
        "attempts": 0,
        "created_at": now,
        "updated_at": now,
    }


def _why_not_claimed(record: DeliveryRecord) -> ClaimResult:
    if record.state == DeliveryState.SENT:
        return ClaimResult.SENT
    if record.state == DeliveryState.DEAD:
        return ClaimResult.DEAD
    if record.state == DeliveryState.CANCELLED:
        return ClaimResult.CANCELLED
    if record.state == DeliveryState.SENDING:
        return ClaimResult.IN_FLIGHT
    return ClaimResult.DEFERRED
