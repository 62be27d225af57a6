"""What an adapter can do, as protocols one per capability, and what its module exports.

An adapter implements `Adapter` and exactly the capability protocols it has; it declares
the same in its `PlatformSpec`, and the conformance suite holds the two together. So an
adapter that cannot search has no `search` to pretend with, and a campaign asking it to
search is refused when the file loads, not when the run starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import httpx

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
from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import Authenticator, Session
from social_pipelines.platforms.http import Door
from social_pipelines.platforms.policy import PlatformPolicy


class Source(StrEnum):
    """Where a reply campaign finds the posts it answers (`Searcher.search(source=...)`)."""

    SEARCH = "search"  # full-text search for the query
    HASHTAG = "hashtag"  # the query is a hashtag: its timeline
    MENTIONS = "mentions"  # posts that mention the account (the query filters them)


class Capability(StrEnum):
    SEARCH = "search"  # find other accounts' posts for a query (`Searcher`)
    REPLY = "reply"  # answer a post (`Poster` with `in_reply_to_id`)
    PUBLISH = "publish"  # a post of our own (`Poster`)
    MEDIA = "media"  # attach images (`MediaUploader`)
    RECONCILE = "reconcile"  # find a delivery that may be out (`Reconciler`)


@runtime_checkable
class Adapter(Protocol):
    """One authenticated account on one platform; a context manager that closes its client."""

    name: str

    def whoami(self) -> Identity:
        """The account's stable identity, from the platform."""
        ...

    def content_rules(self) -> ContentRules:
        """What a post may hold (text length, media), read from the platform where it
        publishes that."""
        ...

    def text_length(self, text: str, rules: ContentRules) -> int:
        """Length of `text` as the platform counts it against `rules.max_characters`.
        Pure: it never sends a request (the rules come from a guarded `content_rules()`)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class ClosedOnExit:
    """`with it:` closes it on the way out: the context manager every adapter (and what
    wraps one) is, written once. The class provides `close`."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@runtime_checkable
class Searcher(Adapter, Protocol):
    def search(
        self,
        query: str,
        *,
        limit: int,
        since: datetime,
        until: datetime | None = None,
        source: Source = Source.SEARCH,
    ) -> SearchResult:
        """Public posts matching `query` from `source` (one the spec declares), newest
        first, written before `until` (None: up to now), paged back to `since` or until
        `limit` posts of other accounts were examined (whichever comes first)."""
        ...


@runtime_checkable
class Poster(Adapter, Protocol):
    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        """Create a post or reply. `idempotency_key` is the delivery id, sent as the
        platform's dedupe handle where it has one (a second guard, never the only one)."""
        ...


@runtime_checkable
class MediaUploader(Adapter, Protocol):
    def upload_media(self, media: MediaUpload) -> MediaRef:
        """Upload one image (with its alt text) for a later create."""
        ...


@runtime_checkable
class Reconciler(Adapter, Protocol):
    def find_delivery(self, delivery: Delivery) -> Published | None:
        """The post this delivery made, if the platform has it; None on a miss.

        The ground truth before any resend of a delivery that may be out: each platform
        finds its own posts its own way (the post a reply answers, a record key, a content
        hash, a container id), looking back to the delivery's plan time, not one page.
        """
        ...


# The protocol whose methods each capability needs (protocol classes, for isinstance).
CAPABILITY_PROTOCOLS: Mapping[Capability, type] = {
    Capability.SEARCH: Searcher,
    Capability.REPLY: Poster,
    Capability.PUBLISH: Poster,
    Capability.MEDIA: MediaUploader,
    Capability.RECONCILE: Reconciler,
}


class Connect(Protocol):
    """An adapter module's `connect`: a bare adapter whose client goes through `door`."""

    def __call__(
        self,
        account: Any,
        *,
        variables: Mapping[str, str],
        door: Door,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        session: Session | None = None,
    ) -> Adapter: ...


@dataclass(frozen=True)
class PlatformSpec:
    """Everything the rest of the project learns about a platform from its module."""

    name: str
    account_model: type[AccountBase]
    connect: Connect
    policy: PlatformPolicy
    capabilities: frozenset[Capability]
    # Where its reply campaigns may find posts (`Source`), the first the default.
    sources: tuple[Source, ...] = (Source.SEARCH,)
    # Accounts holding expiring tokens: the platform's session requests; `connect` then
    # gets a `Session` that keeps them (None: a fixed credential, Mastodon's token).
    authenticator: Authenticator | None = None

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities
