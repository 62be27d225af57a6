"""Sending one delivery exactly once: claim in the ledger, send, record.

The rules of DESIGN.md's delivery ledger live here and nowhere else:
- a `sent` delivery is never sent again; its remote id and URL are returned instead;
- a delivery that may already be out (`unknown`, or a claimant that died mid-send) is
  reconciled against the account's own recent posts before anything is sent again;
- a platform "duplicate" answer triggers reconciliation, not failure;
- a create is repeated in place only when it provably never reached the platform or the
  platform dedupes it (the guarded platform's retries decide that from the error class);
- a used-up quota, a long rate-limit wait or an open circuit defers the delivery with a
  not-before time instead of failing or sleeping;
- a delivery out of attempts, or rejected, is dead with its reason, and stays visible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from social_pipelines.errors import (
    CircuitOpen,
    Duplicate,
    OutcomeUnknown,
    QuotaExhausted,
    RateLimited,
    Rejected,
    SocialError,
    summarize,
)
from social_pipelines.models import CreatePost, DeliveryKind, DeliveryState, Draft, Published
from social_pipelines.platforms.base import Platform
from social_pipelines.store.ledger import (
    Claim,
    ClaimResult,
    DeliveryRecord,
    Ledger,
    QuotaRule,
    content_hash,
)

DEFAULT_LEASE = timedelta(minutes=10)
DEFAULT_MAX_ATTEMPTS = 6
RECONCILE_LIMIT = 5000


class Outcome(StrEnum):
    SENT = "sent"
    RECONCILED = "reconciled"  # it was out already: found on the platform, recorded as sent
    ALREADY_SENT = "already_sent"
    IN_FLIGHT = "in_flight"  # another run holds it right now
    DEFERRED = "deferred"  # waits for a quota window, a rate limit or a circuit
    FAILED = "failed"  # retryable; a later attempt will send it
    UNKNOWN = "unknown"  # may be out; the next attempt reconciles first
    DEAD = "dead"


SETTLED = frozenset({Outcome.SENT, Outcome.RECONCILED, Outcome.ALREADY_SENT, Outcome.DEAD})


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: str
    outcome: Outcome
    url: str = ""
    remote_id: str = ""
    error: str = ""
    error_kind: str = ""
    not_before: datetime | None = None

    @property
    def settled(self) -> bool:
        """True when nothing more will happen to this delivery without a person."""
        return self.outcome in SETTLED


def _result(
    record: DeliveryRecord, outcome: Outcome, error: SocialError | None = None
) -> DeliveryResult:
    return DeliveryResult(
        delivery_id=record.delivery_id,
        outcome=outcome,
        url=record.remote_url or "",
        remote_id=record.remote_id or "",
        # The ledger's 2 KB excerpt, read back, is summarised like a fresh error.
        error=str(error) if error else summarize(record.error),
        error_kind=error.kind if error else (record.error_kind or ""),
        not_before=record.not_before,
    )


class Deliverer:
    """Sends drafts for one account through its (guarded) platform, under the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        platform: Platform,
        *,
        run_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
        quotas: Iterable[QuotaRule] = (),
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        self.ledger = ledger
        self.platform = platform
        self.run_id = run_id
        self.lease = lease
        self.quotas = tuple(quotas)
        self.max_attempts = max_attempts

    def deliver(self, draft: Draft) -> DeliveryResult:
        """Plan the draft (the first text planned wins) and send it once."""
        claim = self.ledger.plan_and_claim(
            draft, run_id=self.run_id, lease=self.lease, quotas=self.quotas
        )
        return self._drive(claim)

    def send(self, delivery_id: str) -> DeliveryResult:
        """Drive a planned delivery one step towards `sent` (or dead)."""
        claim = self.ledger.claim(
            delivery_id, run_id=self.run_id, lease=self.lease, quotas=self.quotas
        )
        return self._drive(claim)

    def _drive(self, claim: Claim) -> DeliveryResult:
        record = claim.record
        delivery_id = record.delivery_id
        match claim.result:
            case ClaimResult.SENT:
                return _result(record, Outcome.ALREADY_SENT)
            case ClaimResult.IN_FLIGHT:
                return _result(record, Outcome.IN_FLIGHT)
            case ClaimResult.DEFERRED:
                return _result(record, Outcome.DEFERRED)
            case ClaimResult.DEAD:
                return _result(record, Outcome.DEAD)
            case ClaimResult.RECONCILE:
                settled = self._reconcile_first(claim)
                if settled is not None:
                    return settled
                until = self.ledger.quota_until(delivery_id, self.quotas)
                if until is not None:
                    return self._record(
                        record,
                        claim.attempt,
                        QuotaExhausted("posting quota used up", until=until),
                        DeliveryState.FAILED,
                        Outcome.DEFERRED,
                        not_before=until,
                    )
        if claim.attempt > self.max_attempts:
            return self._record(
                record,
                claim.attempt,
                # The last error as detail, not message: a stored page stays out of logs.
                Rejected(
                    f"out of attempts ({self.max_attempts})", detail=record.error or "no error"
                ),
                DeliveryState.DEAD,
                Outcome.DEAD,
            )
        return self._send(record, claim.attempt)

    def _reconcile_first(self, claim: Claim) -> DeliveryResult | None:
        """Settle a doubtful delivery from the platform's own record, if it is there."""
        record = claim.record
        try:
            return self._found_on_platform(record, claim.attempt)
        except SocialError as error:
            # Still cannot tell whether it is out: it stays unknown.
            return self._record(
                record, claim.attempt, error, DeliveryState.UNKNOWN, Outcome.UNKNOWN
            )

    def _found_on_platform(self, record: DeliveryRecord, attempt: int) -> DeliveryResult | None:
        """Record the delivery as sent if the platform already has it; None on a miss."""
        found = self.reconcile(record)
        if found is None:
            return None
        done = self.ledger.record_sent(record.delivery_id, attempt, found, outcome="reconciled")
        return _result(done, Outcome.RECONCILED)

    def _send(self, record: DeliveryRecord, attempt: int) -> DeliveryResult:
        post = CreatePost(
            text=record.text,
            in_reply_to_id=record.subject if record.kind == DeliveryKind.REPLY else None,
        )
        try:
            published = self.platform.create_post(post, idempotency_key=record.delivery_id)
        except Duplicate as error:
            try:
                settled = self._found_on_platform(record, attempt)
            except SocialError:
                settled = None
            return settled or self._record(
                record, attempt, error, DeliveryState.UNKNOWN, Outcome.UNKNOWN
            )
        except OutcomeUnknown as error:
            return self._record(record, attempt, error, DeliveryState.UNKNOWN, Outcome.UNKNOWN)
        except Rejected as error:
            return self._record(record, attempt, error, DeliveryState.DEAD, Outcome.DEAD)
        except (RateLimited, QuotaExhausted, CircuitOpen) as error:
            until = error.resume_at if isinstance(error, RateLimited) else error.until
            return self._record(
                record, attempt, error, DeliveryState.FAILED, Outcome.DEFERRED, not_before=until
            )
        except SocialError as error:
            if attempt >= self.max_attempts:
                return self._record(record, attempt, error, DeliveryState.DEAD, Outcome.DEAD)
            return self._record(record, attempt, error, DeliveryState.FAILED, Outcome.FAILED)
        done = self.ledger.record_sent(record.delivery_id, attempt, published)
        return _result(done, Outcome.SENT)

    def _record(
        self,
        record: DeliveryRecord,
        attempt: int,
        error: SocialError,
        state: DeliveryState,
        outcome: Outcome,
        *,
        not_before: datetime | None = None,
    ) -> DeliveryResult:
        done = self.ledger.record_error(
            record.delivery_id,
            attempt,
            error,
            state=state,
            not_before=not_before,
            outcome=str(outcome),
        )
        return _result(done, outcome, error)

    def reconcile(self, record: DeliveryRecord) -> Published | None:
        """Look for the delivery among the account's own recent posts.

        A reply is found by the post it answers (we answer a post at most once); a publish
        by its content. Only a miss allows a new send.
        """
        # Nothing of ours can predate the plan; a minute of slack covers clock skew.
        since = record.created_at - timedelta(minutes=1)
        for post in self.platform.recent_own_posts(since=since, limit=RECONCILE_LIMIT):
            if record.kind == DeliveryKind.REPLY:
                matches = post.in_reply_to_id == record.subject
            else:
                matches = content_hash(post.text) == record.content_hash
            if matches:
                return Published(remote_id=post.id, url=post.url, created_at=post.created_at)
        return None
