"""The one door: which calls are repeated, which are not, and what is fed back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from social_pipelines.errors import OutcomeUnknown, RateLimited, Rejected, Transient
from social_pipelines.models import CreatePost, Identity, Published
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.resilience.limits import RateLimits
from social_pipelines.resilience.policy import PlatformPolicy, Rate
from social_pipelines.store import StateStore


class ScriptedPlatform:
    """A remote platform that answers from a script: errors to raise, then success."""

    name = "mastodon"

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = list(errors)
        self.calls = 0

    def _next(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)

    def whoami(self) -> Identity:
        self._next()
        return Identity(platform="mastodon", account_id="1", handle="brand", domain="x")

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        self._next()
        return Published(remote_id="42", url="https://x/42")

    def close(self) -> None:
        pass


POLICY = PlatformPolicy(
    buckets={"account": [Rate(limit=1000, seconds=60)]},
    endpoints={"*": ["account"]},
    retry_attempts=4,
    retry_initial_seconds=0.001,
    retry_max_seconds=5,
    max_wait_seconds=2,
    breaker_fail_max=50,
)


@pytest.fixture
def parts(tmp_path: Path):
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    limits = RateLimits(store.engine, sqlite_path=tmp_path / "buckets.db")
    breaker = SharedBreaker(store.engine, "mastodon:brand", fail_max=50, reset_timeout=60)
    yield limits, breaker
    limits.close()


def guard(parts, inner: ScriptedPlatform, sleeps: list[float] | None = None) -> GuardedPlatform:
    limits, breaker = parts
    return GuardedPlatform(
        inner,
        account="brand",
        policy=POLICY,
        breaker=breaker,
        limits=limits,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def test_reads_are_retried_through_transient_errors(parts) -> None:
    inner = ScriptedPlatform([Transient("503"), Transient("reset")])
    assert guard(parts, inner).whoami().account_id == "1"
    assert inner.calls == 3


def test_create_that_never_left_is_retried(parts) -> None:
    inner = ScriptedPlatform([Transient("connect error")])
    post = guard(parts, inner).create_post(CreatePost(text="hi"), idempotency_key="k")
    assert post.remote_id == "42" and inner.calls == 2


def test_create_with_unknown_outcome_is_never_repeated_in_place(parts) -> None:
    """Not even with the same idempotency key: servers ignore keys (Takahē) or lose them;
    the ledger reconciles first."""
    inner = ScriptedPlatform([OutcomeUnknown("read timeout")])
    with pytest.raises(OutcomeUnknown):
        guard(parts, inner).create_post(CreatePost(text="hi"), idempotency_key="k")
    assert inner.calls == 1


def test_rejected_is_never_repeated(parts) -> None:
    inner = ScriptedPlatform([Rejected("422")])
    with pytest.raises(Rejected):
        guard(parts, inner).whoami()
    assert inner.calls == 1


def test_short_retry_after_is_honoured_and_blocks_the_bucket(parts) -> None:
    limits, _ = parts
    sleeps: list[float] = []
    inner = ScriptedPlatform([RateLimited("429", retry_after=1.5)])
    guard(parts, inner, sleeps).whoami()
    assert inner.calls == 2
    assert sleeps and max(sleeps) >= 1.4
    blocked = limits.blocked_until(["mastodon:brand:account"])
    assert blocked is None or blocked <= datetime.now(UTC)


def test_long_retry_after_is_handed_back_not_slept(parts) -> None:
    limits, _ = parts
    sleeps: list[float] = []
    inner = ScriptedPlatform([RateLimited("429", retry_after=3600)])
    with pytest.raises(RateLimited) as raised:
        guard(parts, inner, sleeps).whoami()
    assert raised.value.retry_after == 3600
    assert inner.calls == 1 and sleeps == []
    # Every other process now waits too: the bucket is blocked for the hour.
    assert limits.blocked_until(["mastodon:brand:account"]) is not None
