"""tenacity around calls that are safe to repeat, honouring what the platform asked for.

Safe means: a read, or a create that provably never reached the platform, or a create the
platform dedupes (same idempotency key, same post). Everything else is decided by the
ledger, not by retrying.
"""

from __future__ import annotations

from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from social_pipelines.errors import OutcomeUnknown, RateLimited, SocialError
from social_pipelines.resilience.policy import PlatformPolicy


def is_safe_to_repeat(
    error: BaseException, *, policy: PlatformPolicy, create: bool, dedupes: bool
) -> bool:
    if not isinstance(error, SocialError):
        return False
    if isinstance(error, RateLimited):
        # Only a short wait happens in the step; a long one defers the delivery.
        return (error.retry_after or 0) <= policy.max_wait_seconds
    if isinstance(error, OutcomeUnknown):
        return create and dedupes
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
        return backoff(state)

    return wait


def retrying(
    policy: PlatformPolicy,
    *,
    create: bool,
    dedupes: bool,
    sleep: Callable[[float], None] | None = None,
) -> Retrying:
    """A tenacity `Retrying` bounded in attempts and total time."""
    extra = {"sleep": sleep} if sleep is not None else {}
    return Retrying(
        retry=retry_if_exception(
            lambda error: is_safe_to_repeat(error, policy=policy, create=create, dedupes=dedupes)
        ),
        wait=_wait(policy),
        stop=stop_after_attempt(policy.retry_attempts) | stop_after_delay(policy.retry_max_seconds),
        reraise=True,
        **extra,
    )
