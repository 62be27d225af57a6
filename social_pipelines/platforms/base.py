"""The `Platform` protocol every adapter implements.

An adapter speaks one platform's HTTP API and maps every answer into `errors.py`; it does
no retrying, rate limiting or bookkeeping of its own. Those wrap it from outside (the
resilience layer and the ledger), so adding a platform adds an adapter and a row of
defaults, nothing else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class Platform(Protocol):
    """One authenticated account on one platform."""

    name: str

    def whoami(self) -> Identity:
        """The account's stable identity, from the platform."""
        ...

    def limits(self) -> PlatformLimits:
        """Text and media limits, read from the platform where it publishes them."""
        ...

    def text_length(self, text: str) -> int:
        """Length of `text` as the platform counts it against `max_characters`."""
        ...

    def search(self, query: str, *, limit: int, since: datetime) -> SearchResult:
        """Public posts matching `query`, newest first, paged back to `since` or until
        `limit` posts of other accounts were examined (whichever comes first)."""
        ...

    def create_post(self, post: CreatePost, *, idempotency_key: str) -> Published:
        """Create a post or reply. `idempotency_key` is the delivery id."""
        ...

    def upload_media(self, media: MediaUpload) -> MediaRef:
        """Upload one image (with its alt text) for a later create."""
        ...

    def recent_own_posts(self, *, since: datetime, limit: int = 1000) -> list[SocialPost]:
        """The account's own posts created at or after `since`, newest first (at most
        `limit`): the ground truth reconciliation matches unknown deliveries against, so
        it pages back as far as `since` rather than stopping at one page."""
        ...

    def close(self) -> None: ...
