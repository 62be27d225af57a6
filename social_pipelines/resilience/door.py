"""The resilience side of the transport door: one account's permits, budget and blocks.

`platforms/http.py` calls `enter` before every request an adapter sends and `leave` after
it. Enter takes a permit from every rate bucket of the request's endpoint class (our
configured ceiling and the budget the platform announced, shared by every process);
leave settles it with what the answer announced, and a 429 blocks the buckets in every
process until the platform said we may come back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import httpx

from social_pipelines.log import Log
from social_pipelines.platforms.http import RateLimitInfo, rate_limit_info, retry_after_seconds
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.budget import Permit
from social_pipelines.resilience.rate_limits import RateLimits

# After waiting this long for a rate slot, the circuit may have moved: look again.
RECHECK_CIRCUIT_AFTER = 0.05
# A 429 without Retry-After or a reset header blocks its buckets this long.
DEFAULT_429_WAIT = 1.0
# A wait for a rate slot at least this long is logged (shorter ones are the normal pace
# of an account sending one request at a time, and would flood the log).
LOG_WAITS_FROM = 1.0
_LOG = logging.getLogger(__name__)


class AccountDoor:
    """The `Door` of one platform account's client.

    `read_limits` reads an answer's budget headers; the default knows the platforms'
    header families, a service with its own (OpenAI's `x-ratelimit-remaining-requests`
    with durations as resets) passes its reading.
    """

    def __init__(
        self,
        rate_limits: RateLimits,
        breaker: SharedBreaker,
        *,
        platform: str,
        account: str,
        policy: PlatformPolicy,
        log: Log | None = None,
        read_limits: Callable[[httpx.Headers], RateLimitInfo | None] = rate_limit_info,
    ) -> None:
        self.rate_limits = rate_limits
        self.read_limits = read_limits
        self.breaker = breaker
        self.platform = platform
        self.account = account
        self.policy = policy
        self.log = log or _LOG

    def enter(self, endpoint: str) -> Permit:
        permit = self.rate_limits.acquire(self.platform, self.account, self.policy, endpoint)
        if permit.waited >= LOG_WAITS_FROM:
            self.log.info(
                f"{self.platform} {endpoint} for {self.account}: waited {permit.waited:.1f} s "
                f"for a rate slot ({', '.join(permit.keys) or 'no bucket'})"
            )
        if permit.waited >= RECHECK_CIRCUIT_AFTER:
            try:
                self.breaker.check()
            except BaseException:
                self.rate_limits.settle(permit, None, sent=False)
                raise
        return permit

    def leave(self, permit: object, response: httpx.Response | None, *, sent: bool) -> None:
        assert isinstance(permit, Permit), "a permit this door gave out"
        info = self.read_limits(response.headers) if response is not None else None
        self.rate_limits.settle(permit, info, sent=sent)
        if response is not None and response.status_code == 429:
            self._blocked(permit, response)

    def _blocked(self, permit: Permit, response: httpx.Response) -> None:
        """Nobody in any process asks again before the platform said we may."""
        wait = retry_after_seconds(response.headers)
        wait = DEFAULT_429_WAIT if wait is None else wait
        keys = list(permit.keys)
        self.log.warning(
            f"{self.platform} answered 429 to {response.request.method} "
            f"{response.request.url.path} for {self.account}: buckets "
            f"{', '.join(keys) or 'none'} blocked for {wait:.1f} s in every process"
        )
        self.rate_limits.block(
            keys,
            self.rate_limits.clock() + timedelta(seconds=wait),
            f"HTTP 429, retry after {wait:.0f} s",
        )
