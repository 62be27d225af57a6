"""The door every request to a platform passes, and the reading of what came back.

Every adapter builds its `httpx.Client` with `build_client`, whose transport (`DoorTransport`)
for every request takes a rate permit for its endpoint class (`route(...)`, carried in
`request.extensions`), hands the answer's rate-limit headers back (the door feeds the
shared budget and the blocked-until rows), and classifies transport failures by phase:
nothing sent, or possibly sent. An adapter cannot forget a step, because there is no
other way for its requests to leave: a request without an endpoint class is refused.

The platform-specific part is only which body says "expired token" or "duplicate"
(`status_error` is the generic reading adapters fall back to).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Protocol

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
# `request.extensions` keys: the endpoint class whose rate buckets a request draws from,
# and whether it creates something (then a failure after it left is outcome unknown).
ENDPOINT = "social_pipelines.endpoint"
CREATE = "social_pipelines.create"


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


# Mastodon's `X-RateLimit-*`, X's `x-rate-limit-*`, Bluesky's (IETF draft) `RateLimit-*`.
_PREFIXES = ("x-ratelimit-", "x-rate-limit-", "ratelimit-")


def _header(headers: httpx.Headers, name: str) -> str | None:
    return next((v for p in _PREFIXES if (v := headers.get(p + name)) is not None), None)


def rate_limit_info(headers: httpx.Headers) -> RateLimitInfo | None:
    """What an answer says about the caller's budget, in any of the header families."""
    limit = _header(headers, "limit")
    remaining = _header(headers, "remaining")
    reset = _header(headers, "reset")
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


def route(endpoint: str, *, create: bool = False) -> dict[str, object]:
    """A request's `extensions=`: its endpoint class and whether it creates something."""
    return {ENDPOINT: endpoint, CREATE: create}


class Door(Protocol):
    """What the transport asks of the resilience layer around every single request."""

    def enter(self, endpoint: str) -> object:
        """Before the request: a permit from the rate buckets of `endpoint` (it may wait;
        it raises RateLimited or CircuitOpen instead of waiting too long)."""
        ...

    def leave(self, permit: object, response: httpx.Response | None, *, sent: bool) -> None:
        """After it: the answer (None: no answer; `sent` False: it never left), whose
        rate-limit headers become the shared budget and a 429 a blocked bucket."""
        ...


class DoorTransport(httpx.BaseTransport):
    """Wraps the real transport so that no request of an adapter's client skips the door."""

    def __init__(self, door: Door, *, platform: str, inner: httpx.BaseTransport) -> None:
        self.door = door
        self.platform = platform
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        endpoint = request.extensions.get(ENDPOINT)
        if not isinstance(endpoint, str):
            # A programming error in an adapter: never let a request out without a permit.
            raise TypeError(
                f"{self.platform}: {request.method} {request.url.path} has no endpoint class; "
                "send it with extensions=route(ENDPOINT_CLASS)"
            )
        create = bool(request.extensions.get(CREATE, False))
        permit = self.door.enter(endpoint)
        try:
            response = self.inner.handle_request(request)
            # Read the body here, so a failure while reading is classified like any other.
            response.read()
        except httpx.TransportError as error:
            self.door.leave(permit, None, sent=not isinstance(error, NOT_SENT))
            error.request = request  # the client sets it only after the transport returns
            raise transport_error(error, platform=self.platform, create=create) from None
        except BaseException:
            self.door.leave(permit, None, sent=True)
            raise
        response.request = request  # the client would set it only after we return
        self.door.leave(permit, response, sent=True)
        return response

    def close(self) -> None:
        self.inner.close()


def build_client(
    base_url: str,
    *,
    door: Door,
    platform: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.Client:
    """The only way an adapter gets an HTTP client: every request through `door`.

    `transport` replaces the network (the sandbox's in-process app, a test's mock); the
    door wraps it all the same. `auth` signs every request (`auth.SessionAuth` for tokens
    that expire); a request it repeats passes the door again, like any other.
    """
    return httpx.Client(
        base_url=base_url,
        auth=auth,
        headers={"User-Agent": "social-pipelines", **(headers or {})},
        timeout=httpx.Timeout(timeout),
        transport=DoorTransport(door, platform=platform, inner=transport or httpx.HTTPTransport()),
        follow_redirects=False,
    )
