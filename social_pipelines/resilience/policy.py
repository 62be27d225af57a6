"""Per-platform resilience defaults: one row per platform, overridable in settings.

Adding a platform adds a row here and an adapter, nothing else. Rates come from
`../shared/reference/platforms.md`; posting quotas are brand-safety caps (posts per
account per hour and day) counted from the ledger's `sent` rows.
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


def _rates(*pairs: tuple[int, float]) -> list[Rate]:
    return [Rate(limit=limit, seconds=seconds) for limit, seconds in pairs]


DEFAULT_POLICIES: dict[str, PlatformPolicy] = {
    # 300 requests per 5 minutes per account over every endpoint; media 30 per 30 min.
    # No posting cap is documented: the quota is what the rate limit allows.
    "mastodon": PlatformPolicy(
        buckets={"account": _rates((300, 5 * MINUTE)), "media": _rates((30, 30 * MINUTE))},
        endpoints={"*": ["account"], "media": ["account", "media"]},
        quota_per_hour=3600,
        quota_per_day=86400,
    ),
    # createRecord costs 3 of 5,000 points/hour and 35,000/day per account.
    "bluesky": PlatformPolicy(
        buckets={
            "account": _rates((3000, 5 * MINUTE)),
            "write": _rates((1666, HOUR), (11666, DAY)),
        },
        endpoints={"*": ["account"], "write": ["account", "write"]},
        quota_per_hour=1666,
        quota_per_day=11666,
    ),
    "x": PlatformPolicy(
        breaker_reset_seconds=60.0,
        buckets={
            "search": _rates((300, 15 * MINUTE)),
            "write": _rates((100, 15 * MINUTE)),
            "read": _rates((900, 15 * MINUTE)),
            "media": _rates((500, 15 * MINUTE)),
        },
        endpoints={"search": ["search"], "write": ["write"], "read": ["read"], "media": ["media"]},
        quota_per_hour=30,
        quota_per_day=300,
    ),
    "linkedin": PlatformPolicy(
        buckets={"account": _rates((500, DAY))},
        endpoints={"*": ["account"]},
        quota_per_hour=3,
        quota_per_day=20,
    ),
    "facebook": PlatformPolicy(
        buckets={"account": _rates((200, HOUR))},
        endpoints={"*": ["account"]},
        quota_per_hour=10,
        quota_per_day=50,
    ),
    "instagram": PlatformPolicy(
        buckets={"account": _rates((200, HOUR))},
        endpoints={"*": ["account"]},
        quota_per_hour=5,
        quota_per_day=25,
    ),
    "youtube": PlatformPolicy(
        breaker_reset_seconds=120.0,
        buckets={"search": _rates((100, DAY)), "write": _rates((190, DAY))},
        endpoints={"search": ["search"], "write": ["write"], "*": []},
        quota_per_hour=1,
        quota_per_day=6,
    ),
    "llm": PlatformPolicy(call_timeout=60.0, buckets={}, endpoints={}),
}


def policy_for(platform: str, overrides: dict[str, dict] | None = None) -> PlatformPolicy:
    """The default row for `platform`, with any settings overrides applied and validated."""
    base = DEFAULT_POLICIES.get(platform, PlatformPolicy())
    change = (overrides or {}).get(platform)
    if not change:
        return base
    return PlatformPolicy.model_validate({**base.model_dump(), **change})
