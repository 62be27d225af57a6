"""Turning HTTP answers and transport failures into the error taxonomy.

Shared by every adapter: the platform-specific part is only which body says "expired
token" or "duplicate"; whether a failure may have created something depends on the
transport phase and on whether the call was a create.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx

from social_pipelines.errors import (
    OutcomeUnknown,
    RateLimited,
    Rejected,
    SocialError,
    Transient,
    excerpt,
)

# Raised before a single byte of the request left: nothing can have been created.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class RateLimitInfo:
    """What a response said about the caller's budget."""

    limit: int | None
    remaining: int | None
    reset_at: datetime | None


def parse_reset(value: str | None, *, now: datetime | None = None) -> datetime | None:
    """A reset header: epoch seconds (X, Bluesky), ISO 8601 (Mastodon) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        # Small numbers are "seconds from now" (RateLimit-Reset drafts), large ones epochs.
        if number < 10**9:
            return (now or datetime.now(UTC)) + timedelta(seconds=number)
        return datetime.fromtimestamp(number, UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def retry_after_seconds(headers: httpx.Headers, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `Retry-After` (seconds or HTTP date), else from a reset header."""
    now = now or datetime.now(UTC)
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            when = parse_reset(value, now=now)
            if when:
                return max(0.0, (when - now).total_seconds())
    reset = parse_reset(
        headers.get("x-ratelimit-reset")
        or headers.get("x-rate-limit-reset")
        or headers.get("ratelimit-reset"),
        now=now,
    )
    return max(0.0, (reset - now).total_seconds()) if reset else None


def rate_limit_info(headers: httpx.Headers) -> RateLimitInfo | None:
    limit = headers.get("x-ratelimit-limit") or headers.get("x-rate-limit-limit")
    remaining = headers.get("x-ratelimit-remaining") or headers.get("x-rate-limit-remaining")
    reset = headers.get("x-ratelimit-reset") or headers.get("x-rate-limit-reset")
    if limit is None and remaining is None and reset is None:
        return None

    def _int(value: str | None) -> int | None:
        try:
            return int(float(value)) if value is not None else None
        except ValueError:
            return None

    return RateLimitInfo(_int(limit), _int(remaining), parse_reset(reset))


def _peer(error: httpx.TransportError) -> str:
    """The host (and a non-default port) the failed request was for; never its userinfo,
    path or query string, which may carry a credential."""
    try:
        url = error.request.url
    except RuntimeError:  # an error raised without its request
        return ""
    host = url.host
    if not host:
        return ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return f"{host}:{url.port}" if url.port is not None else host


def _os_reason(error: BaseException) -> str:
    """The operating system's words for it ("Connection refused"), if the cause says.

    Only the OS error's own text is used: never httpx's message, which may quote a URL.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
        cause = cause.__cause__ or cause.__context__
    return ""


def transport_error(error: httpx.TransportError, *, platform: str, create: bool) -> SocialError:
    """A failure with no HTTP answer. Once the request may have left, a create is unknown.

    The message names the host it could not reach (`ConnectError reaching
    social.example:8443 (Connection refused)`), so a wrong instance URL or a stopped server
    is recognisable, but never the URL itself.
    """
    peer = _peer(error)
    reason = _os_reason(error)

    def subject(preposition: str) -> str:
        where = f" {preposition} {peer}" if peer else ""
        return f"{type(error).__name__}{where}" + (f" ({reason})" if reason else "")

    if isinstance(error, NOT_SENT):
        return Transient(f"{subject('reaching')} before the request was sent", platform=platform)
    if create:
        return OutcomeUnknown(
            f"{subject('from')} after the request was sent; it may have been processed",
            platform=platform,
        )
    return Transient(f"{subject('from')} on a read", platform=platform)


def status_error(response: httpx.Response, *, platform: str, create: bool) -> SocialError:
    """The generic reading of an error status; adapters handle their special bodies first."""
    status = response.status_code
    detail = excerpt(response.text)
    if status == 429:
        return RateLimited(
            "rate limited",
            retry_after=retry_after_seconds(response.headers),
            platform=platform,
            status_code=status,
            detail=detail,
        )
    if status == 503:
        # Overloaded or in maintenance: the request was turned away, not processed.
        return Transient(
            "service unavailable", platform=platform, status_code=status, detail=detail
        )
    if status >= 500:
        if create:
            return OutcomeUnknown(
                "server error on a create; it may have been processed",
                platform=platform,
                status_code=status,
                detail=detail,
            )
        return Transient("server error", platform=platform, status_code=status, detail=detail)
    if status == 408:
        return Transient("request timeout", platform=platform, status_code=status, detail=detail)
    return Rejected("request rejected", platform=platform, status_code=status, detail=detail)
