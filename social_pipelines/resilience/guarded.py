"""A platform account behind its circuit breaker and bounded retries.

`GuardedPlatform` is what everything above the resilience layer holds: per call, the
breaker first (an open circuit fails fast, without touching the platform), then the
adapter's call, whose every request passes the transport door (rate permit, shared
budget, answer headers fed back, transport failures classified; `resilience/door.py`);
tenacity repeats the whole when the error class says that is safe. Posting quotas are
enforced where sends are claimed, in the ledger.

It offers what its adapter can do and says so when asked for more: a capability the
adapter lacks raises ConfigError (campaigns asking for it are refused at load already).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from social_pipelines.errors import AuthExpired, ConfigError
from social_pipelines.log import Log
from social_pipelines.models import (
    ContentRules,
    CreatePost,
    Delivery,
    Identity,
    MediaRef,
    MediaUpload,
    Published,
    SearchResult,
)
from social_pipelines.platforms.capabilities import (
    Adapter,
    Capability,
    ClosedOnExit,
    MediaUploader,
    Poster,
    Reconciler,
    Searcher,
    Source,
)
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.retry import retrying
from social_pipelines.resilience.sessions import ReconnectNeeded, StoredSession

T = TypeVar("T")
A = TypeVar("A", bound=Adapter)
_LOG = logging.getLogger(__name__)


class GuardedPlatform(ClosedOnExit):
    """One connected account: the only way ops and the deliverer reach a platform."""

    def __init__(
        self,
        inner: Adapter,
        *,
        account: str,
        policy: PlatformPolicy,
        breaker: SharedBreaker,
        capabilities: frozenset[Capability],
        sleep: Callable[[float], None] | None = None,
        log: Log | None = None,
        session: StoredSession | None = None,
        on_auth_refused: Callable[[AuthExpired], None] | None = None,
    ) -> None:
        """`log` gets every repeat (a run's own log, so its user sees them); `session`
        keeps the account's tokens (platforms whose tokens expire); `on_auth_refused` hears
        of a token the platform refused after the session's one refresh and repeat (it
        marks the account `reconnect_needed`)."""
        self.session = session
        self._on_auth_refused = on_auth_refused
        self._inner = inner
        self.account = account
        self.policy = policy
        self.breaker = breaker
        self.capabilities = capabilities
        self._sleep = sleep
        self.log = log or _LOG
        self.name = inner.name
        self._rules: ContentRules | None = None

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def _call(self, what: str, func: Callable[[], T]) -> T:
        runner = retrying(
            self.policy,
            what=f"{self.name} {what} for {self.account}",
            log=self.log,
            sleep=self._sleep,
        )
        try:
            return runner(lambda: self.breaker.call(func))
        except ReconnectNeeded:
            raise  # marked already, with the reason
        except AuthExpired as error:
            if self._on_auth_refused is not None:
                self._on_auth_refused(error)
            raise

    def _able(self, capability: Capability, protocol: type[A]) -> A:
        if capability not in self.capabilities or not isinstance(self._inner, protocol):
            raise ConfigError(
                f"account {self.account!r}: {self.name} cannot {capability}; it can "
                f"{', '.join(sorted(self.capabilities)) or 'nothing'}"
            )
        return self._inner

    def whoami(self) -> Identity:
        return self._call("whoami", self._inner.whoami)

    def content_rules(self) -> ContentRules:
        if self._rules is None:
            self._rules = self._call("content rules", self._inner.content_rules)
        return self._rules

    def text_length(self, text: str) -> int:
        """As the platform counts it; the rules it needs are read through the breaker."""
        return self._inner.text_length(text, self.content_rules())

    def search(
        self,
        query: str,
        *,
        limit: int,
        since: datetime,
        until: datetime | None = None,
        source: Source = Source.SEARCH,
    ) -> SearchResult:
        searcher = self._able(Capability.SEARCH, Searcher)
        return self._call(
            f"{source} read",
            lambda: searcher.search(query, limit=limit, since=since, until=until, source=source),
        )

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        capability = Capability.REPLY if post.in_reply_to_id else Capability.PUBLISH
        poster = self._able(capability, Poster)
        return self._call(
            "create", lambda: poster.create_post(post, idempotency_key=idempotency_key)
        )

    def upload_media(self, media: MediaUpload) -> MediaRef:
        # An upload publishes nothing: an orphaned attachment is harmless, so it may repeat.
        uploader = self._able(Capability.MEDIA, MediaUploader)
        return self._call("media upload", lambda: uploader.upload_media(media))

    def find_delivery(self, delivery: Delivery) -> Published | None:
        reconciler = self._able(Capability.RECONCILE, Reconciler)
        return self._call("reconciliation", lambda: reconciler.find_delivery(delivery))

    def close(self) -> None:
        self._inner.close()
        if self.session is not None:
            self.session.http.close()
