"""tenacity around calls that are safe to repeat (`resilience/retry.py`).

Nothing sleeps: each `retrying` gets a list's `append` as its sleep, so a test reads the
waits it asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from social_pipelines.errors import (
    AuthExpired,
    CircuitOpen,
    Duplicate,
    OutcomeUnknown,
    OutOfAttempts,
    QuotaExhausted,
    RateLimited,
    Rejected,
    Transient,
)
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.resilience.retry import is_safe_to_repeat, retrying

POLICY = PlatformPolicy(
    retry_attempts=4, retry_initial_seconds=0.5, retry_max_seconds=60, max_wait_seconds=30
)


@dataclass
class ListLog:
    """A log that keeps what it was told, by level."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def info(self, msg: str, /) -> None:
        self.lines.append(("info", msg))

    def warning(self, msg: str, /) -> None:
        self.lines.append(("warning", msg))


@dataclass
class Flaky:
    """A call that raises each of `errors` in turn, then returns "done"."""

    errors: list[BaseException]
    calls: int = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def run(
    call: Callable[[], str], policy: PlatformPolicy = POLICY
) -> tuple[list[float], ListLog, Callable[[], str]]:
    sleeps: list[float] = []
    log = ListLog()
    runner = retrying(policy, what="mastodon search for brand", log=log, sleep=sleeps.append)
    return sleeps, log, lambda: runner(call)


# -- is_safe_to_repeat -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "safe"),
    [
        (Transient("connect error"), True),
        (RateLimited("slow down"), True),  # no Retry-After: the backoff decides
        (RateLimited("slow down", retry_after=0), True),
        (RateLimited("slow down", retry_after=30), True),  # exactly max_wait_seconds
        (RateLimited("slow down", retry_after=30.5), False),  # longer: defer instead
        (OutcomeUnknown("read timeout"), False),  # may be out: reconcile first
        (Duplicate("already posted"), False),
        (Rejected("validation failed", status_code=422), False),
        (AuthExpired("token refused", status_code=401), False),
        (QuotaExhausted("hourly cap"), False),
        (CircuitOpen("breaker open"), False),
        (OutOfAttempts("gave up"), False),
        (ValueError("a bug"), False),
        (TimeoutError("not a platform answer"), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_what_is_safe_to_repeat(error: BaseException, safe: bool) -> None:
    assert is_safe_to_repeat(error, policy=POLICY) is safe


class StillUnknown(OutcomeUnknown):
    retryable = True  # whatever a subclass claims, an unknown outcome is never repeated


def test_an_unknown_outcome_is_never_repeated_even_if_it_says_it_is_retryable() -> None:
    assert is_safe_to_repeat(StillUnknown("lost answer"), policy=POLICY) is False


# -- retrying ----------------------------------------------------------------------------


def test_a_call_that_succeeds_is_called_once_without_waiting() -> None:
    call = Flaky([])
    sleeps, log, go = run(call)
    assert go() == "done"
    assert (call.calls, sleeps, log.lines) == (1, [], [])


def test_transient_failures_are_repeated_with_backoff_until_one_succeeds() -> None:
    call = Flaky([Transient("503"), Transient("503")])
    sleeps, _, go = run(call)
    assert go() == "done"
    assert call.calls == 3
    # multiplier * 2**n plus up to one multiplier of jitter
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 1.5


def test_repeats_stop_after_the_policys_attempts_and_the_last_error_is_reraised() -> None:
    errors: list[BaseException] = [Transient(f"503 number {n}") for n in range(1, 10)]
    last = errors[POLICY.retry_attempts - 1]
    call = Flaky(list(errors))
    sleeps, _, go = run(call)
    with pytest.raises(Transient) as caught:
        go()
    assert caught.value is last
    assert call.calls == POLICY.retry_attempts
    assert len(sleeps) == POLICY.retry_attempts - 1


def test_every_repeat_is_logged_with_its_error_wait_and_attempt() -> None:
    call = Flaky(
        [Transient("connect error", platform="mastodon"), RateLimited("429", retry_after=2)]
    )
    sleeps, log, go = run(call)
    assert go() == "done"
    assert log.lines == [
        (
            "warning",
            f"mastodon search for brand: mastodon: connect error; repeating in "
            f"{sleeps[0]:.1f} s (attempt 2)",
        ),
        ("warning", f"mastodon search for brand: 429; repeating in {sleeps[1]:.1f} s (attempt 3)"),
    ]


def test_a_rate_limit_waits_at_least_what_the_platform_asked() -> None:
    call = Flaky([RateLimited("429", retry_after=7), RateLimited("429", retry_after=0.1)])
    sleeps, _, go = run(call)
    assert go() == "done"
    assert sleeps[0] >= 7
    assert sleeps[1] >= 0.1


def test_a_rate_limit_without_a_wait_backs_off_like_any_transient_failure() -> None:
    call = Flaky([RateLimited("429")])
    sleeps, _, go = run(call)
    assert go() == "done"
    assert 0.5 <= sleeps[0] <= 1.0


def test_the_total_delay_is_bounded_by_the_policy() -> None:
    policy = POLICY.model_copy(update={"retry_attempts": 20, "retry_max_seconds": 10})
    errors: list[BaseException] = [RateLimited(f"429 number {n}", retry_after=4) for n in range(20)]
    call = Flaky(list(errors))
    sleeps, log, go = run(call, policy)
    with pytest.raises(RateLimited) as caught:
        go()
    # 4 + 4 s waited; a third wait would end past 10 s, so the third error is the answer.
    assert sleeps == [4, 4]
    assert call.calls == 3
    assert caught.value is errors[2]
    assert len(log.lines) == 2


def test_a_wait_of_exactly_the_bound_is_still_waited() -> None:
    policy = POLICY.model_copy(update={"retry_max_seconds": 30})
    call = Flaky([RateLimited("429", retry_after=30)])
    sleeps, _, go = run(call, policy)
    assert go() == "done"
    assert sleeps == [30]


@pytest.mark.parametrize(
    "error",
    [
        OutcomeUnknown("read timeout after the create left"),
        Rejected("validation failed", status_code=422),
        RateLimited("429", retry_after=31),  # longer than max_wait_seconds: defer
        KeyError("a bug"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_what_is_not_safe_is_raised_at_once_without_a_repeat(error: BaseException) -> None:
    call = Flaky([error])
    sleeps, log, go = run(call)
    with pytest.raises(type(error)) as caught:
        go()
    assert caught.value is error
    assert (call.calls, sleeps, log.lines) == (1, [], [])
