"""Tokens that expire, for platforms whose accounts hold a session (Bluesky, X, ...).

An adapter module whose account authenticates with a token that expires exports an
`Authenticator` in its `PlatformSpec`: only the platform's own requests and answers (log
in, refresh, which answer means "expired"). Keeping the tokens is not the adapter's job:
the resilience layer gives `connect` a `Session` (`resilience/sessions.py`) that keeps them
in the state store, encrypted, refreshes them ahead of expiry under a lock every process
and machine respects (refresh tokens rotate), and marks the account `reconnect_needed`
when the platform refuses it for good.

The adapter builds its client with `auth=SessionAuth(session, authenticator.expired)`:
every request carries the current access token, and an answer that says it expired is
refreshed once and repeated once, through the door like any other request (an expired
token is refused before anything is processed, so repeating a create is safe).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from social_pipelines.platforms.http import Door


@dataclass(frozen=True)
class TokenSet:
    """What a platform handed us for one account: tokens and what they are good for.

    `subject` is the account's id on the platform as the session says (a Bluesky DID, an X
    user id); `endpoint` where its requests go (a Bluesky account's own PDS); `extra` any
    other platform fields worth keeping. The tokens never show in a repr.
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(default="", repr=False)
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    subject: str = ""
    handle: str = ""
    endpoint: str = ""
    scope: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def expires_within(self, seconds: float, *, now: datetime | None = None) -> bool:
        """Whether the access token is dead or will be within `seconds` (unknown expiry:
        never, until the platform says otherwise)."""
        if self.expires_at is None:
            return False
        left = (self.expires_at - (now or datetime.now(UTC))).total_seconds()
        return left <= seconds

    def merged(self, newer: TokenSet) -> TokenSet:
        """`newer` over this, except that an empty refresh token (or subject, endpoint)
        never replaces a stored one: a platform that did not rotate it sends none."""
        return replace(
            newer,
            refresh_token=newer.refresh_token or self.refresh_token,
            refresh_expires_at=newer.refresh_expires_at or self.refresh_expires_at,
            subject=newer.subject or self.subject,
            handle=newer.handle or self.handle,
            endpoint=newer.endpoint or self.endpoint,
            scope=newer.scope or self.scope,
            extra={**self.extra, **newer.extra},
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at.isoformat() if self.expires_at else None,
                "refresh_expires_at": (
                    self.refresh_expires_at.isoformat() if self.refresh_expires_at else None
                ),
                "subject": self.subject,
                "handle": self.handle,
                "endpoint": self.endpoint,
                "scope": self.scope,
                "extra": dict(self.extra),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> TokenSet:
        data: dict[str, Any] = json.loads(text)

        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token") or "",
            expires_at=when(data.get("expires_at")),
            refresh_expires_at=when(data.get("refresh_expires_at")),
            subject=data.get("subject") or "",
            handle=data.get("handle") or "",
            endpoint=data.get("endpoint") or "",
            scope=data.get("scope") or "",
            extra=data.get("extra") or {},
        )


def jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT, read without verifying it (only the platform can, and
    only the platform decides: this is for refreshing ahead of time). None when the token
    is not a JWT or carries no `exp`."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
        return datetime.fromtimestamp(float(claims["exp"]), UTC)
    except (ValueError, KeyError, TypeError):
        return None


class Session(Protocol):
    """One account's tokens as the resilience layer keeps them (`resilience/sessions.py`)."""

    def current(self) -> TokenSet:
        """Tokens valid now: the stored ones, refreshed first when they expire soon, or a
        new session (a login with the account's own secret) when there are none. Raises
        `AuthExpired` when the account must be connected again."""
        ...

    def renew(self, refused: TokenSet) -> TokenSet:
        """The platform refused `refused` as expired: refresh (unless another process
        already did, then its tokens), or raise `AuthExpired` when that is refused too."""
        ...


class Authenticator(Protocol):
    """A platform's own requests for sessions; exported in its `PlatformSpec`."""

    def client(
        self,
        account: Any,
        *,
        door: Door,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> httpx.Client:
        """The client token requests go through (`http.build_client`: through the door,
        endpoint class `auth`)."""
        ...

    def login(self, account: Any, *, variables: Mapping[str, str], http: httpx.Client) -> TokenSet:
        """A new session from the account's own secret (Bluesky's app password). A
        platform that needs a person for that (X: `accounts connect`) raises `AuthExpired`
        saying so."""
        ...

    def refresh(
        self,
        account: Any,
        tokens: TokenSet,
        *,
        variables: Mapping[str, str],
        http: httpx.Client,
    ) -> TokenSet:
        """New tokens for `tokens` (their refresh token rotates on most platforms).
        `AuthExpired` when the platform refuses the refresh token for good; `Transient`
        (or another retryable error) when the token endpoint failed on the way."""
        ...

    def expired(self, response: httpx.Response) -> bool:
        """Whether this answer means the access token expired (refresh once and repeat)."""
        ...


class SessionAuth(httpx.Auth):
    """Bearer auth from a `Session`: one refresh and one repeat on an expired answer."""

    requires_response_body = True  # Bluesky says "ExpiredToken" in a 400's body

    def __init__(self, session: Session, expired: Callable[[httpx.Response], bool]) -> None:
        self.session = session
        self.expired = expired

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        tokens = self.session.current()
        request.headers["Authorization"] = f"Bearer {tokens.access_token}"
        response = yield request
        if self.expired(response):
            tokens = self.session.renew(tokens)
            request.headers["Authorization"] = f"Bearer {tokens.access_token}"
            yield request


@runtime_checkable
class AuthorizationFlow(Protocol):
    """An authenticator whose tokens come from a person's consent in a browser (OAuth 2.0
    authorization code with PKCE: X): what `accounts connect` drives."""

    def authorize_url(
        self,
        account: Any,
        *,
        variables: Mapping[str, str],
        redirect_uri: str,
        state: str,
        code_challenge: str,
    ) -> str: ...

    def exchange_code(
        self,
        account: Any,
        *,
        code: str,
        code_verifier: str,
        redirect_uri: str,
        variables: Mapping[str, str],
        http: httpx.Client,
    ) -> TokenSet: ...


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636): 43 url-safe characters of
    randomness, and the unpadded base64url SHA-256 of them."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
