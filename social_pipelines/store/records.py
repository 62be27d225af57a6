"""What the ledger hands back: a delivery row as a value, and the answer to a claim."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from social_pipelines.models import DeliveryState, Published
from social_pipelines.store.schema import deliveries

# Read on every claim and transition: built once (building SQLAlchemy expressions and
# their cache keys on every call cost more than running them).
BY_ID = sa.select(deliveries).where(deliveries.c.delivery_id == sa.bindparam("delivery_id"))


class RemoteIdTaken(Exception):
    """The remote post is already recorded for another delivery of the account: it is that
    one's, never this one's."""


@dataclass(frozen=True)
class DeliveryRecord:
    """One `deliveries` row, read in one statement: a value, never a live handle."""

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
    reference: str | None
    staged_id: str | None
    attempt_base: int = 0

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
    CANCELLED = "cancelled"  # withdrawn before it went out


@dataclass(frozen=True)
class Claim:
    """The answer to a claim: what happened, the row as it is now, and (when the claim was
    won) the attempt number that closes it with `record_sent` or `record_error`."""

    result: ClaimResult
    record: DeliveryRecord
    attempt: int = 0
