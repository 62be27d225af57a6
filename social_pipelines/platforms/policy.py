"""What a platform's policy row says: how hard we may push one account, and when we stop.

Each adapter module exports its own row (`POLICY`), with the rates from
`../shared/reference/platforms.md`; settings may override fields per platform. Posting
quotas are brand-safety caps (posts per account per hour and day) counted from the
ledger's `sent` rows.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0


class Rate(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    limit: int = Field(gt=0)
    seconds: float = Field(gt=0)


class PlatformPolicy(BaseModel):
    """How hard we may push one platform account, and when we stop trying."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Circuit breaker: consecutive platform failures before it opens, and how long it stays
    # open before one trial call may go through.
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=60.0, gt=0)
    call_timeout: float = Field(default=10.0, gt=0, le=300)
    # Rate buckets by name, and which buckets each endpoint class draws from.
    buckets: dict[str, list[Rate]] = Field(default_factory=dict)
    endpoints: dict[str, list[str]] = Field(default_factory=dict)
    # Posting quotas per account (None: no cap of our own).
    quota_per_hour: int | None = Field(default=None, ge=0)
    quota_per_day: int | None = Field(default=None, ge=0)
    # After a create whose outcome is unknown, wait this long before looking for it among
    # the account's own posts (a new post can take seconds to show there); only a miss may
    # send it again.
    reconcile_settle_seconds: float = Field(default=5.0, ge=0, le=600)
    # A call waits for a rate slot at most this long; a longer wait defers the delivery.
    max_wait_seconds: float = Field(default=60.0, ge=0)
    # tenacity, for calls that are safe to repeat.
    retry_attempts: int = Field(default=4, ge=1, le=20)
    retry_max_seconds: float = Field(default=60.0, gt=0)
    retry_initial_seconds: float = Field(default=0.5, gt=0)
    # Dagster RetryPolicy on the posting ops.
    op_retries: int = Field(default=3, ge=0)
    op_retry_delay: float = Field(default=10.0, ge=0)

    def buckets_for(self, endpoint: str) -> list[str]:
        return self.endpoints.get(endpoint, self.endpoints.get("*", []))


def rates(*pairs: tuple[int, float]) -> list[Rate]:
    """`(limit, seconds)` pairs as rates, for policy rows."""
    return [Rate(limit=limit, seconds=seconds) for limit, seconds in pairs]
