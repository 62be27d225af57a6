"""OAuth 2.0 user tokens (RFC 6749 with PKCE, RFC 7636): the pieces any authorization-code
platform shares, so an adapter's authenticator only names its endpoints and quirks.

- `OAuthClient`: how a client authenticates at the token endpoint: a public client names
  itself in the form, a confidential one sends `Authorization: Basic` (and, as X documents,
  no `client_id` in the form);
- `authorization_url`: the consent page's address with its parameters;
- `token_set`: a token endpoint's answer as a `TokenSet`;
- `token_error`: a token endpoint's refusal in `errors.py` terms: a dead grant is
  `AuthExpired` (a person must connect the account again), a failure on the way stays
  retryable and is never taken for a dead token.

Secrets (client secret, tokens, codes, verifiers) never enter a message or a repr.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx

from social_pipelines.errors import AuthExpired, Rejected, SocialError, Transient
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.platforms.http import status_error

FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class OAuthClient:
    """An app registered with the platform; `client_secret` None for a public client."""

    client_id: str = field(repr=False)
    client_secret: str | None = field(default=None, repr=False)

    @property
    def confidential(self) -> bool:
        return bool(self.client_secret)

    def token_request(self, form: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """The form and headers of a token request carrying `form`, authenticated the way
        this client is: Basic for a confidential client, `client_id` in the form otherwise."""
        headers = {"Content-Type": FORM, "Accept": "application/json"}
        if self.client_secret:
            pair = f"{self.client_id}:{self.client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            return dict(form), headers
        return {**form, "client_id": self.client_id}, headers


def authorization_url(
    endpoint: str,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    code_challenge: str,
) -> str:
    """The consent page for an authorization code with an S256 PKCE challenge. Spaces are
    `%20` (the scope list is space-separated), as the platforms' own examples write it."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        },
        quote_via=quote,
    )
    return f"{endpoint}?{query}"


def token_set(body: Any, *, now: datetime, platform: str) -> TokenSet:
    """`{token_type, expires_in, access_token, scope, refresh_token}` as a TokenSet.

    A missing `refresh_token` stays empty: the caller merges it over the stored tokens
    (`TokenSet.merged`), which keeps the old one. An answer without an access token is a
    failure on the way (a proxy's page?), never a dead grant.
    """
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise Transient("the token endpoint answered without an access token", platform=platform)
    expires_in = body.get("expires_in")
    return TokenSet(
        access_token=body["access_token"],
        refresh_token=str(body.get("refresh_token") or ""),
        expires_at=(
            now + timedelta(seconds=float(expires_in))
            if isinstance(expires_in, int | float) and not isinstance(expires_in, bool)
            else None
        ),
        scope=str(body.get("scope") or ""),
    )


def read_token_answer(
    response: httpx.Response, *, now: datetime, platform: str, what: str
) -> TokenSet:
    """A token endpoint's answer: the tokens, or the error it means (`token_error`)."""
    if not response.is_success:
        raise token_error(response, platform=platform, what=what)
    try:
        body = response.json()
    except ValueError:
        raise Transient(
            f"{what}: the token endpoint answered with a body that is not JSON",
            platform=platform,
            status_code=response.status_code,
            detail=response.text,
        ) from None
    return token_set(body, now=now, platform=platform)


def token_error(response: httpx.Response, *, platform: str, what: str) -> SocialError:
    """What a token endpoint's refusal means; `what` names the grant ("refresh", ...).

    - 400 `invalid_grant` (RFC 6749 §5.2: the grant is invalid, expired, revoked or was
      used already) is a dead token: `AuthExpired`, with the platform's words. So is a 400
      `invalid_request` that says the token was invalid (how X is widely reported to refuse
      a used refresh token; unconfirmed by its documentation).
    - 401 is the client refused (`invalid_client`): no refresh can succeed until a person
      looks, so `AuthExpired` too.
    - 429 and 5xx keep their generic reading (retryable, never a dead token); any other
      refusal is `Rejected` with the platform's words: our request was wrong, and repeating
      it cannot help, but the token may well be alive.
    """
    status = response.status_code
    error, description = oauth_error(response)
    words = ": ".join(part for part in (error, description) if part) or "no reason given"
    if status == 401 or (status == 400 and _dead_grant(error, description)):
        return AuthExpired(
            f"{what} refused: {words}",
            platform=platform,
            status_code=status,
            detail="" if error else response.text,
        )
    if status == 429 or status >= 500 or status == 408:
        return status_error(response, platform=platform, create=False)
    return Rejected(
        f"{what} refused: {words}",
        platform=platform,
        status_code=status,
        detail="" if error else response.text,
    )


def oauth_error(response: httpx.Response) -> tuple[str, str]:
    """`error` and `error_description` of an OAuth error body (RFC 6749 §5.2), or the
    problem JSON's `title` and `detail`; empty strings when the body is neither."""
    try:
        body = response.json()
    except ValueError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error") or body.get("title") or ""
    description = body.get("error_description") or body.get("detail") or ""
    return str(error), str(description)


def _dead_grant(error: str, description: str) -> bool:
    if error == "invalid_grant":
        return True
    said = description.casefold()
    return error == "invalid_request" and "token" in said and "invalid" in said
