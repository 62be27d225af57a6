"""The one door to a platform: every call goes through quota, breaker, limiter, retry.

`GuardedPlatform` implements the same `Platform` protocol as the adapter it wraps, so ops
and the deliverer cannot tell the difference, and cannot go around it. Per call, outermost
first: circuit breaker check -> rate limiter -> breaker-guarded adapter call (httpx with
timeouts, answers mapped into errors.py) -> rate-limit headers fed back to the limiter;
tenacity repeats the whole when the call is safe to repeat. Posting quotas are enforced
where sends are claimed, in the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from social_pipelines.errors import RateLimited
from social_pipelines.log import Log
from social_pipelines.models import (
    CreatePost,
    Identity,
    MediaRef,
    MediaUpload,
    PlatformLimits,
    Published,
    SearchResult,
    SocialPost,
)
from social_pipelines.platforms.base import Platform
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.limits import RateLimits, RequestGate
from social_pipelines.resilience.policy import PlatformPolicy
from social_pipelines.resilience.retry import retrying

T = TypeVar("T")
_LOG = logging.getLogger(__name__)


class GuardedPlatform:
    """A platform account behind its breaker, its rate buckets and bounded retries."""

    def __init__(
        self,
        inner: Platform,
        *,
        account: str,
        policy: PlatformPolicy,
        breaker: SharedBreaker,
        limits: RateLimits,
        gate: RequestGate | None = None,
        sleep: Callable[[float], None] | None = None,
        log: Log | None = None,
    ) -> None:
        """`gate` is the one the adapter calls before each request; without one (an
        adapter that sends exactly one request per call) each call takes one permit.
        `log` gets every repeat and every 429 (a run's own log, so its user sees them)."""
        self.inner = inner
        self.account = account
        self.policy = policy
        self.breaker = breaker
        self.rate_limits = limits
        self.gate = gate or RequestGate(limits, inner.name, account, policy)
        self._sleep = sleep
        self.log = log or _LOG
        self.name = inner.name

    def _call(self, endpoint: str, func: Callable[[], T], *, what: str) -> T:
        def attempt() -> T:
            snapshot = self.breaker.check()
            waited = self.gate.prepay(endpoint)
            try:
                # After a real wait for a rate slot the circuit may have moved: look again.
                return self.breaker.call(func, checked=snapshot if waited < 0.05 else None)
            except RateLimited as error:
                # The platform refused for rate: nobody in any process asks again before
                # it said we may.
                wait = error.retry_after if error.retry_after is not None else 1.0
                keys = self.rate_limits.bucket_keys(self.name, self.account, self.policy, endpoint)
                if error.status_code == 429:
                    self.log.warning(
                        f"{self.name} answered 429 to {what} for {self.account}: buckets "
                        f"{', '.join(keys)} blocked for {wait:.1f} s in every process"
                    )
                self.rate_limits.block(
                    keys,
                    datetime.now(UTC) + timedelta(seconds=wait),
                    f"HTTP 429, retry after {wait:.0f} s",
                )
                raise
            finally:
                self.gate.forget_prepaid()

        runner = retrying(
            self.policy,
            what=f"{self.name} {what} for {self.account}",
            log=self.log,
            sleep=self._sleep,
        )
        return runner(attempt)

    # -- Platform --------------------------------------------------------------------------

    def whoami(self) -> Identity:
        return self._call("read", self.inner.whoami, what="whoami")

    def limits(self) -> PlatformLimits:
        return self._call("read", self.inner.limits, what="limits")

    def text_length(self, text: str) -> int:
        return self.inner.text_length(text)

    def search(self, query: str, *, limit: int, since: datetime) -> SearchResult:
        return self._call(
            "search", lambda: self.inner.search(query, limit=limit, since=since), what="search"
        )

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        return self._call(
            "write",
            lambda: self.inner.create_post(post, idempotency_key=idempotency_key),
            what="create",
        )

    def upload_media(self, media: MediaUpload) -> MediaRef:
        # An upload publishes nothing: an orphaned attachment is harmless, so it may repeat.
        return self._call("media", lambda: self.inner.upload_media(media), what="media upload")

    def recent_own_posts(self, *, since: datetime, limit: int = 1000) -> list[SocialPost]:
        return self._call(
            "read",
            lambda: self.inner.recent_own_posts(since=since, limit=limit),
            what="own posts",
        )

    def close(self) -> None:
        self.inner.close()
