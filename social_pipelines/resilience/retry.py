"""tenacity around calls that are safe to repeat, honouring what the platform asked for.

Safe means: a read, or a create that provably never reached the platform (or that it
answered without creating anything, as `NotReady`: media still processing). A create whose
outcome is unknown is never repeated here, not even with the same idempotency key: servers
ignore keys (Takahē) or lose them (mastodon#21840, #37879, #40399), so the ledger first
looks for it among the account's own posts (`delivery.py`), and only a miss sends again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity import sleep as tenacity_sleep
from tenacity.stop import stop_base

from social_pipelines.errors import NotReady, OutcomeUnknown, RateLimited, SocialError
from social_pipelines.log import Log
from social_pipelines.platforms.policy import PlatformPolicy

_LOG = logging.getLogger(__name__)


def is_safe_to_repeat(error: BaseException, *, policy: PlatformPolicy) -> bool:
    if not isinstance(error, SocialError):
        return False
    if isinstance(error, RateLimited):
        # Only a short wait happens in the step; a long one defers the delivery.
        return (error.retry_after or 0) <= policy.max_wait_seconds
    if isinstance(error, OutcomeUnknown):
        return False  # reconcile first, whatever the platform promises about keys
    return error.retryable


def _wait(policy: PlatformPolicy) -> Callable[[RetryCallState], float]:
    # Jitter in proportion to the backoff (tenacity's default adds up to a whole second).
    backoff = wait_exponential_jitter(
        multiplier=policy.retry_initial_seconds,
        max=policy.retry_max_seconds,
        jitter=policy.retry_initial_seconds,
    )

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return max(error.retry_after, backoff(state) / 4)
        if isinstance(error, NotReady) and error.retry_after is not None:
            # "Try again in a moment": at least that moment, longer as the waits add up.
            return max(error.retry_after, backoff(state))
        return backoff(state)

    return wait


class _StopBeforeWaitingPast(stop_base):
    """Stop rather than start a wait that would make the waits add up to more than `bound`
    seconds. Counted from what the waits asked for, so the bound holds whatever `sleep`
    is (tenacity's `stop_after_delay` reads the clock only, after a wait: it can let the
    waits reach almost twice the bound, and with a sleep that is not the clock's, any)."""

    def __init__(self, bound: float) -> None:
        self.bound = bound

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.idle_for + retry_state.upcoming_sleep > self.bound


def _log_repeat(log: Log, what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            f"{what}: {error}; repeating in {wait:.1f} s (attempt {state.attempt_number + 1})"
        )

    return before_sleep


def retrying(
    policy: PlatformPolicy,
    *,
    what: str = "call",
    log: Log | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Retrying:
    """A tenacity `Retrying` bounded in attempts and time: its waits add up to at most
    `retry_max_seconds`, and none starts once that long has passed. Every repeat is logged
    to `log`; the last error is raised as it was."""
    return Retrying(
        retry=retry_if_exception(lambda error: is_safe_to_repeat(error, policy=policy)),
        before_sleep=_log_repeat(log or _LOG, what),
        wait=_wait(policy),
        stop=stop_after_attempt(policy.retry_attempts)
        | _StopBeforeWaitingPast(policy.retry_max_seconds)
        | stop_after_delay(policy.retry_max_seconds),
        reraise=True,
        sleep=sleep or tenacity_sleep,
    )
