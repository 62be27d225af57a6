"""Sending one delivery exactly once: claim in the ledger, send, record.

The rules of DESIGN.md's delivery ledger live here and nowhere else:
- a `sent` delivery is never sent again; its remote id and URL are returned instead;
- a delivery that may already be out (`unknown`, or a claimant that died mid-send) is
  reconciled against the account's own recent posts before anything is sent again;
- a platform "duplicate" answer triggers reconciliation, not failure;
- the outcome of every attempt is written down, with the error class when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from social_pipelines.errors import (
    AuthExpired,
    CircuitOpen,
    Duplicate,
    OutcomeUnknown,
    QuotaExhausted,
    RateLimited,
    Rejected,
    SocialError,
)
from social_pipelines.models import CreatePost, DeliveryKind, DeliveryState, Draft, Published
from social_pipelines.platforms.base import Platform
from social_pipelines.store.ledger import ClaimResult, DeliveryRecord, Ledger, content_hash

DEFAULT_LEASE = timedelta(minutes=10)
RECONCILE_DEPTH = 40


class Outcome(StrEnum):
    SENT = "sent"
    RECONCILED = "reconciled"  # it was out already: found on the platform, recorded as sent
    ALREADY_SENT = "already_sent"
    IN_FLIGHT = "in_flight"
    DEFERRED = "deferred"
    FAILED = "failed"  # retryable; a later attempt will send it
    UNKNOWN = "unknown"  # may be out; the next attempt reconciles first
    DEAD = "dead"


@dataclass(frozen=True)
class DeliveryResult:
    delivery_id: str
    outcome: Outcome
    url: str = ""
    remote_id: str = ""
    error: str = ""
    error_kind: str = ""

    @property
    def settled(self) -> bool:
        """True when nothing more will happen to this delivery without a person."""
        return self.outcome in (
            Outcome.SENT,
            Outcome.RECONCILED,
            Outcome.ALREADY_SENT,
            Outcome.DEAD,
        )


def _result(
    record: DeliveryRecord, outcome: Outcome, error: SocialError | None = None
) -> DeliveryResult:
    return DeliveryResult(
        delivery_id=record.delivery_id,
        outcome=outcome,
        url=record.remote_url or "",
        remote_id=record.remote_id or "",
        error=str(error) if error else (record.error or ""),
        error_kind=error.kind if error else (record.error_kind or ""),
    )


class Deliverer:
    """Sends drafts for one account through its platform, guarded by the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        platform: Platform,
        *,
        run_id: str | None = None,
        lease: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.ledger = ledger
        self.platform = platform
        self.run_id = run_id
        self.lease = lease

    def deliver(self, draft: Draft) -> DeliveryResult:
        self.ledger.plan(draft)
        claim = self.ledger.claim(draft.delivery_id, run_id=self.run_id, lease=self.lease)
        record = claim.record
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
                try:
                    found = self.reconcile(record)
                except SocialError as error:
                    # Still cannot tell whether it is out: it stays unknown.
                    return self._record(
                        record, claim.attempt, error, DeliveryState.UNKNOWN, Outcome.UNKNOWN
                    )
                if found is not None:
                    done = self.ledger.record_sent(
                        record.delivery_id, claim.attempt, found, outcome="reconciled"
                    )
                    return _result(done, Outcome.RECONCILED)
        return self._send(record, claim.attempt, draft)

    def _send(self, record: DeliveryRecord, attempt: int, draft: Draft) -> DeliveryResult:
        post = CreatePost(
            text=record.text,
            in_reply_to_id=draft.in_reply_to.id if draft.in_reply_to else None,
        )
        try:
            published = self.platform.create_post(post, idempotency_key=record.delivery_id)
        except Duplicate as error:
            found = self.reconcile(record)
            if found is not None:
                done = self.ledger.record_sent(
                    record.delivery_id, attempt, found, outcome="reconciled"
                )
                return _result(done, Outcome.RECONCILED)
            return self._record(record, attempt, error, DeliveryState.UNKNOWN, Outcome.UNKNOWN)
        except OutcomeUnknown as error:
            return self._record(record, attempt, error, DeliveryState.UNKNOWN, Outcome.UNKNOWN)
        except Rejected as error:
            return self._record(record, attempt, error, DeliveryState.DEAD, Outcome.DEAD)
        except (RateLimited, QuotaExhausted, CircuitOpen) as error:
            until = getattr(error, "resume_at", None) or getattr(error, "until", None)
            return self._record(
                record, attempt, error, DeliveryState.FAILED, Outcome.DEFERRED, not_before=until
            )
        except (AuthExpired, SocialError) as error:
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
        not_before: object = None,
    ) -> DeliveryResult:
        done = self.ledger.record_error(
            record.delivery_id,
            attempt,
            error,
            state=state,
            not_before=not_before,  # type: ignore[arg-type]
            outcome=str(outcome),
        )
        return _result(done, outcome, error)

    def reconcile(self, record: DeliveryRecord) -> Published | None:
        """Look for the delivery among the account's own recent posts.

        A reply is found by the post it answers (we answer a post at most once); a publish
        by its content. Only a miss allows a new send.
        """
        for post in self.platform.recent_own_posts(limit=RECONCILE_DEPTH):
            if record.kind == DeliveryKind.REPLY:
                matches = post.in_reply_to_id == record.subject
            else:
                matches = content_hash(post.text) == record.content_hash
            if matches:
                return Published(remote_id=post.id, url=post.url, created_at=post.created_at)
        return None
