"""The guarded platform and its door: which calls are repeated, which are not, and what
every request feeds back to the limits all processes share."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import pytest

from social_pipelines.errors import ConfigError, OutcomeUnknown, RateLimited, Rejected, Transient
from social_pipelines.models import ContentRules, CreatePost, Identity, Published
from social_pipelines.platforms.capabilities import Capability
from social_pipelines.platforms.mastodon import MastodonPlatform
from social_pipelines.platforms.policy import PlatformPolicy, Rate
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.door import DEFAULT_429_WAIT, LOG_WAITS_FROM, AccountDoor
from social_pipelines.resilience.guarded import GuardedPlatform
from social_pipelines.resilience.rate_limits import RateLimits
from social_pipelines.store import StateStore


class ScriptedPlatform:
    """An adapter whose platform answers from a script: errors to raise, then success."""

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

    def content_rules(self) -> ContentRules:
        self._next()
        return ContentRules(max_characters=500)

    def text_length(self, text: str, rules: ContentRules) -> int:
        return len(text)

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        self._next()
        return Published(remote_id="42", url="https://x/42")

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


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
    sleeps: list[float] = []
    limits = RateLimits(store.engine, sqlite_path=tmp_path / "buckets.db", sleep=sleeps.append)
    breaker = SharedBreaker(store.engine, "mastodon:brand", fail_max=50, reset_timeout=60)
    yield limits, breaker
    limits.close()


def guard(
    parts, inner: object, sleeps: list[float] | None = None, capabilities=frozenset(Capability)
) -> GuardedPlatform:
    _, breaker = parts
    return GuardedPlatform(
        inner,  # type: ignore[arg-type]
        account="brand",
        policy=POLICY,
        breaker=breaker,
        capabilities=capabilities,
        sleep=(sleeps if sleeps is not None else []).append,
    )


def mastodon_answering(parts, answers: list[httpx.Response]) -> tuple[MastodonPlatform, list]:
    """The real adapter behind the real door, its platform answering `answers` in turn
    (then 200s): the remote platform mocked on its documented shapes, nothing of ours."""
    limits, breaker = parts
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if answers:
            return answers.pop(0)
        if request.url.path.endswith("verify_credentials"):
            return httpx.Response(200, json={"id": "1", "username": "brand", "acct": "brand"})
        return httpx.Response(200, json={"domain": "social.example"})

    door = AccountDoor(limits, breaker, platform="mastodon", account="brand", policy=POLICY)
    adapter = MastodonPlatform(
        "https://social.example", "tok", door=door, transport=httpx.MockTransport(answer)
    )
    return adapter, seen


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
    adapter, seen = mastodon_answering(
        parts, [httpx.Response(429, headers={"Retry-After": "1.5"}, json={"error": "slow"})]
    )
    assert guard(parts, adapter, sleeps).whoami().account_id == "1"
    assert len(seen) == 3  # the refused one, then identity and instance
    assert sleeps and max(sleeps) >= 1.4
    assert limits.blocked_until(["mastodon:brand:account"]) is not None  # every process saw it


def test_long_retry_after_is_handed_back_not_slept(parts) -> None:
    limits, _ = parts
    sleeps: list[float] = []
    adapter, seen = mastodon_answering(
        parts, [httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": "slow"})]
    )
    with pytest.raises(RateLimited) as raised:
        guard(parts, adapter, sleeps).whoami()
    assert raised.value.retry_after == 3600
    assert len(seen) == 1 and sleeps == []
    # Every other process now waits too: the bucket is blocked for the hour.
    blocked = limits.blocked_until(["mastodon:brand:account"])
    assert blocked is not None and (blocked - datetime.now(UTC)).total_seconds() > 3500


def test_text_length_reads_the_limits_through_the_breaker_once(parts) -> None:
    inner = ScriptedPlatform([Transient("reset")])
    guarded = guard(parts, inner)
    assert guarded.text_length("hello") == 5
    assert guarded.text_length("hello there") == 11
    assert inner.calls == 2  # one refused, one answered; then kept


def test_a_capability_the_platform_lacks_is_refused_by_name(parts) -> None:
    inner = ScriptedPlatform([])
    guarded = guard(parts, inner, capabilities=frozenset({Capability.REPLY}))
    with pytest.raises(ConfigError, match="mastodon cannot search; it can reply"):
        guarded.search("dagster", limit=10, since=datetime.now(UTC))
    assert guarded.create_post(CreatePost(text="hi", in_reply_to_id="7"), idempotency_key="k")
    with pytest.raises(ConfigError, match="cannot publish"):
        guarded.create_post(CreatePost(text="hi"), idempotency_key="k")
    assert inner.calls == 1


def test_a_429_that_names_no_wait_still_blocks_every_process_a_while(parts) -> None:
    """The platform promised nothing (no Retry-After, no reset header): the buckets are
    blocked for the door's default second anyway, not left open to a stampede."""
    limits, _ = parts
    sleeps: list[float] = []
    adapter, seen = mastodon_answering(parts, [httpx.Response(429, json={"error": "slow"})])
    before = datetime.now(UTC)
    assert guard(parts, adapter, sleeps).whoami().account_id == "1"
    assert len(seen) == 3  # refused once, then answered
    blocked = limits.blocked_until(["mastodon:brand:account"])
    assert blocked is not None and (blocked - before).total_seconds() >= DEFAULT_429_WAIT


def test_a_wait_for_a_rate_slot_is_logged_from_a_second_on(parts) -> None:
    """Waits this short are the normal pace; a longer one says who waited, how long, for
    which buckets (in a run, the run's log)."""
    limits, breaker = parts
    lines: list[str] = []

    class Lines:
        def info(self, msg: str) -> None:
            lines.append(msg)

        warning = info

    door = AccountDoor(
        limits, breaker, platform="mastodon", account="brand", policy=POLICY, log=Lines()
    )
    limits.settle(door.enter("read"), None)
    assert lines == []
    keys = ["mastodon:brand:account"]
    limits.block(keys, datetime.now(UTC) + timedelta(seconds=LOG_WAITS_FROM + 0.5), "HTTP 429")
    limits.settle(door.enter("read"), None)  # the fake sleep waits it out at once
    (said,) = lines
    assert said.startswith("mastodon read for brand: waited 1.")
    assert said.endswith("s for a rate slot (mastodon:brand:account)")
