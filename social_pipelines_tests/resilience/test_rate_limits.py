"""Shared rate buckets and the blocked-until rows that platform headers set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from social_pipelines.errors import RateLimited
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.platforms.policy import PlatformPolicy, Rate
from social_pipelines.resilience.rate_limits import RateLimits
from social_pipelines.store import StateStore


def policy(limit: int = 3, seconds: float = 60, max_wait: float = 0.2) -> PlatformPolicy:
    return PlatformPolicy(
        buckets={"account": [Rate(limit=limit, seconds=seconds)]},
        endpoints={"*": ["account"]},
        max_wait_seconds=max_wait,
    )


@pytest.fixture
def limits(store_url: str, tmp_path: Path):
    """Buckets on a locked SQLite file, or PostgreSQL tables beside the state store."""
    store = StateStore(store_url)
    sleeps: list[float] = []
    where = (
        {"postgres_url": store_url}
        if store.backend == "postgresql"
        else {"sqlite_path": tmp_path / "buckets.db"}
    )
    rate_limits = RateLimits(store.engine, sleep=sleeps.append, **where)
    rate_limits.sleeps = sleeps  # type: ignore[attr-defined]
    yield rate_limits
    rate_limits.close()
    store.dispose()


def test_bucket_admits_its_limit_then_refuses_with_a_wait(limits: RateLimits) -> None:
    rules = policy(limit=3)
    for _ in range(3):
        limits.settle(limits.acquire("mastodon", "brand", rules, "write"), None)
    with pytest.raises(RateLimited) as raised:
        limits.acquire("mastodon", "brand", rules, "write")
    assert raised.value.retry_after and raised.value.retry_after > 0


def test_accounts_have_separate_buckets(limits: RateLimits) -> None:
    rules = policy(limit=1)
    limits.settle(limits.acquire("mastodon", "brand", rules, "write"), None)
    limits.settle(limits.acquire("mastodon", "other", rules, "write"), None)
    with pytest.raises(RateLimited):
        limits.acquire("mastodon", "brand", rules, "read")  # same account-wide bucket


def _answered(limits: RateLimits, rules: PlatformPolicy, account: str, info: RateLimitInfo):
    limits.settle(limits.acquire("mastodon", account, rules, "write"), info)


def test_remaining_zero_blocks_every_process_until_reset(limits: RateLimits) -> None:
    rules = policy(limit=100, max_wait=60)
    reset = datetime.now(UTC) + timedelta(minutes=10)
    _answered(limits, rules, "brand", RateLimitInfo(300, 0, reset))
    # A long wait is not slept through: it is handed back so the delivery can be deferred.
    with pytest.raises(RateLimited) as raised:
        limits.acquire("mastodon", "brand", rules, "write")
    assert raised.value.retry_after == pytest.approx(600, abs=5)
    # Remaining above zero lets that many more through, and no more.
    _answered(limits, rules, "other", RateLimitInfo(300, 2, reset))
    limits.settle(limits.acquire("mastodon", "other", rules, "write"), None)
    limits.settle(limits.acquire("mastodon", "other", rules, "write"), None)
    with pytest.raises(RateLimited):
        limits.acquire("mastodon", "other", rules, "write")


def test_announced_budget_below_ours_is_what_counts(limits: RateLimits) -> None:
    """Our bucket says 100 per minute; the platform says 3 are left: 3 it is."""
    rules = policy(limit=100, max_wait=0.2)
    reset = datetime.now(UTC) + timedelta(minutes=5)
    _answered(limits, rules, "brand", RateLimitInfo(20, 3, reset))
    taken = [limits.acquire("mastodon", "brand", rules, "write") for _ in range(3)]
    with pytest.raises(RateLimited) as raised:
        limits.acquire("mastodon", "brand", rules, "write")
    assert "announced by the platform" in str(raised.value)
    key = "mastodon:brand:account"
    # An answer about the same window never raises the count (this one was counted before
    # the first announcement): 3, less the 2 still in flight.
    limits.settle(taken[0], RateLimitInfo(20, 5, reset))
    assert limits.budget.known(key) == (1, reset)
    # A new window starts the count afresh; the one request still in flight is counted.
    later = reset + timedelta(minutes=5)
    limits.settle(taken[1], RateLimitInfo(20, 19, later))
    assert limits.budget.known(key) == (18, later)
    # An answer about the old window arriving late changes nothing.
    limits.settle(taken[2], RateLimitInfo(20, 19, reset))
    assert limits.budget.known(key) == (19, later)


def test_the_lowest_answer_is_the_platforms_latest_word(limits: RateLimits) -> None:
    """Answers arrive in any order; the budget follows the lowest, and a request that came
    back without a count is taken off it."""
    rules = policy(limit=100, max_wait=0.05)
    reset = datetime.now(UTC) + timedelta(minutes=5)
    key = "mastodon:brand:account"
    _answered(limits, rules, "brand", RateLimitInfo(20, 10, reset))
    first, second = (limits.acquire("mastodon", "brand", rules, "write") for _ in range(2))
    limits.settle(second, RateLimitInfo(20, 8, reset))  # counted after `first`
    assert limits.budget.known(key) == (7, reset)  # 8, less `first` in flight
    limits.settle(first, RateLimitInfo(20, 9, reset))  # its answer comes last
    assert limits.budget.known(key) == (8, reset)
    timed_out = limits.acquire("mastodon", "brand", rules, "write")
    limits.settle(timed_out, None)  # sent, never answered: it may have been counted
    assert limits.budget.known(key) == (7, reset)
    unsent = limits.acquire("mastodon", "brand", rules, "write")
    limits.settle(unsent, None, sent=False)
    assert limits.budget.known(key) == (7, reset)


def test_until_announced_one_request_at_a_time(limits: RateLimits) -> None:
    rules = policy(limit=100, max_wait=0.05)
    first = limits.acquire("mastodon", "brand", rules, "write")
    with pytest.raises(RateLimited) as raised:
        limits.acquire("mastodon", "brand", rules, "write")
    assert "waiting for the platform to announce" in str(raised.value)
    limits.settle(first, None)  # answered without headers: the next one may go
    second = limits.acquire("mastodon", "brand", rules, "write")
    limits.settle(second, RateLimitInfo(300, 50, datetime.now(UTC) + timedelta(minutes=1)))
    # Announced: now several may be in flight at once.
    both = [limits.acquire("mastodon", "brand", rules, "write") for _ in range(2)]
    assert len({permit.id for permit in both}) == 2


def test_a_dead_processs_permit_expires(limits: RateLimits) -> None:
    rules = policy(limit=100, max_wait=0.05).model_copy(update={"call_timeout": 0.01})
    limits.acquire("mastodon", "brand", rules, "write")  # never settled: its process died
    with pytest.raises(RateLimited):
        limits.acquire("mastodon", "brand", rules, "write")
    limits.budget.clock = lambda: datetime.now(UTC) + timedelta(seconds=6)
    limits.acquire("mastodon", "brand", rules, "write")


def test_short_block_is_waited_out_in_place(limits: RateLimits) -> None:
    rules = policy(limit=100, max_wait=60)
    limits.block(["mastodon:brand:account"], datetime.now(UTC) + timedelta(seconds=2), "HTTP 429")
    limits.acquire("mastodon", "brand", rules, "write")
    assert limits.sleeps and 1 < limits.sleeps[0] <= 2  # type: ignore[attr-defined]


def test_a_block_is_never_shortened(limits: RateLimits) -> None:
    key = ["mastodon:brand:account"]
    late = datetime.now(UTC) + timedelta(minutes=5)
    limits.block(key, late, "first")
    limits.block(key, datetime.now(UTC) + timedelta(minutes=1), "second")
    assert limits.blocked_until(key) == late
