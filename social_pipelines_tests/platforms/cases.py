"""What the conformance suite needs to know of each platform: documented answers only.

One entry per registered adapter (the suite fails for an adapter without one): a valid
account, the credentials it reads, the platform's success answer to each request the
checks send, how it says "duplicate" (None where it has no such answer, with why), and a
set of its rate-limit headers with what they announce.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.platforms.bluesky import BlueskyAccount
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.platforms.mastodon import MastodonAccount
from social_pipelines.platforms.x import XAccount

BASE = "https://platform.test"


@dataclass(frozen=True)
class Case:
    account: AccountBase
    variables: Mapping[str, str]
    answer: Callable[[httpx.Request], httpx.Response]
    duplicate: httpx.Response | None
    no_duplicate_because: str
    rate_headers: Mapping[str, str]
    announced: RateLimitInfo
    # A session already held (platforms with an authenticator; None: it logs in first).
    tokens: TokenSet | None = None


def _mastodon(request: httpx.Request) -> httpx.Response:
    """docs.joinmastodon.org: Account (verify_credentials), Instance (v2), Status."""
    path = request.url.path
    if path == "/api/v1/accounts/verify_credentials":
        return httpx.Response(200, json={"id": "109", "username": "brand", "acct": "brand"})
    if path == "/api/v2/instance":
        return httpx.Response(200, json={"domain": "platform.test", "configuration": {}})
    if path == "/api/v1/statuses" and request.method == "POST":
        return httpx.Response(
            200,
            json={
                "id": "110",
                "url": f"{BASE}/@brand/110",
                "created_at": "2026-12-01T12:00:00.000Z",
                "content": "<p>hi</p>",
                "account": {"id": "109", "acct": "brand"},
            },
        )
    return httpx.Response(404, json={"error": "Record not found"})


def _x(request: httpx.Request) -> httpx.Response:
    """docs.x.com / xdevplatform/xdk specs/openapi.json: getUsersMe, createPosts (201),
    the OAuth 2.0 token endpoint (xdevplatform/docs user-access-token.mdx)."""
    path = request.url.path
    if path == "/2/users/me":
        return httpx.Response(200, json={"data": {"id": "2244994945", "username": "brand"}})
    if path == "/2/tweets" and request.method == "POST":
        return httpx.Response(201, json={"data": {"id": "1445880548472328192", "text": "hi"}})
    if path == "/2/oauth2/token" and request.method == "POST":
        return httpx.Response(
            200,
            json={
                "token_type": "bearer",
                "expires_in": 7200,
                "access_token": "x-access-refreshed",
                "scope": "tweet.read tweet.write users.read media.write offline.access",
                "refresh_token": "x-refresh-rotated",
            },
        )
    return httpx.Response(
        404,
        json={
            "title": "Not Found Error",
            "detail": "Could not find the resource.",
            "type": "https://api.x.com/2/problems/resource-not-found",
        },
    )


BLUESKY_DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"


def _bluesky(request: httpx.Request) -> httpx.Response:
    """bluesky-social/atproto lexicons (com.atproto.server.getSession, createSession,
    refreshSession; com.atproto.repo.createRecord) and bsky-docs posts.md (the createRecord
    answer); errors as the XRPC spec writes them (`{"error", "message"}`)."""
    path = request.url.path
    if path == "/xrpc/com.atproto.server.getSession":
        return httpx.Response(200, json={"handle": "brand.bsky.social", "did": BLUESKY_DID})
    if path == "/xrpc/com.atproto.repo.createRecord" and request.method == "POST":
        rkey = json.loads(request.content)["rkey"]
        return httpx.Response(
            200,
            json={
                "uri": f"at://{BLUESKY_DID}/app.bsky.feed.post/{rkey}",
                "cid": "bafyreibjifzpqj6o6wcq3hejh7y4z4z2vmiklkvykc57tw3pcbx3kxifpm",
            },
        )
    if path in (
        "/xrpc/com.atproto.server.createSession",
        "/xrpc/com.atproto.server.refreshSession",
    ):
        return httpx.Response(
            200,
            json={
                "accessJwt": "bsky-access-refreshed",
                "refreshJwt": "bsky-refresh-rotated",
                "handle": "brand.bsky.social",
                "did": BLUESKY_DID,
            },
        )
    return httpx.Response(
        400, json={"error": "InvalidRequest", "message": f"no answer for {path} here"}
    )


CASES: dict[str, Case] = {
    "bluesky": Case(
        account=BlueskyAccount(
            name="brand_bsky",
            platform="bluesky",
            handle="brand.bsky.social",
            app_password_env="CASE_BSKY_APP_PASSWORD",
            pds_url=BASE,
        ),
        variables={"CASE_BSKY_APP_PASSWORD": "abcd-efgh-ijkl-mnop"},
        answer=_bluesky,
        duplicate=None,
        no_duplicate_because="Bluesky has no duplicate-content answer (platforms.md §2.5); "
        "a repeated record key is answered with 500 InternalServerError, an unknown outcome "
        "that getRecord for the key settles",
        # platforms.md §2.3 (xrpc-server rate-limiter-http.ts): RateLimit-Reset in epoch
        # seconds, RateLimit-Policy `<limit>;w=<window seconds>`.
        rate_headers={
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "2999",
            "RateLimit-Reset": "1796126400",
            "RateLimit-Policy": "3000;w=300",
        },
        announced=RateLimitInfo(3000, 2999, datetime.fromtimestamp(1796126400, UTC)),
        tokens=TokenSet(
            access_token="bsky-access-case",
            refresh_token="bsky-refresh-case",
            subject=BLUESKY_DID,
            handle="brand.bsky.social",
            endpoint=BASE,
        ),
    ),
    "mastodon": Case(
        account=MastodonAccount(
            name="brand", platform="mastodon", instance_url=BASE, token_env="CASE_TOKEN"
        ),
        variables={"CASE_TOKEN": "tok-case-secret"},
        answer=_mastodon,
        duplicate=None,
        no_duplicate_because="Mastodon has no duplicate answer: a repeated Idempotency-Key "
        "returns the first status (200), and repeated text is allowed",
        rate_headers={
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": "2026-12-01T12:05:00.000Z",
        },
        announced=RateLimitInfo(300, 299, datetime(2026, 12, 1, 12, 5, tzinfo=UTC)),
    ),
    "x": Case(
        account=XAccount(
            name="brand_x", platform="x", client_id_env="CASE_X_CLIENT_ID", api_url=BASE
        ),
        variables={"CASE_X_CLIENT_ID": "case-client-id"},
        answer=_x,
        # platforms.md §1.5, observed (akrherz/iembot#163).
        duplicate=httpx.Response(
            403,
            json={
                "detail": "You are not allowed to create a Tweet with duplicate content.",
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
            },
        ),
        no_duplicate_because="",
        rate_headers={
            "x-rate-limit-limit": "75",
            "x-rate-limit-remaining": "74",
            "x-rate-limit-reset": "1796126400",
        },
        announced=RateLimitInfo(75, 74, datetime.fromtimestamp(1796126400, UTC)),
        tokens=TokenSet(
            access_token="x-access-case",
            refresh_token="x-refresh-case",
            subject="2244994945",
            handle="brand",
        ),
    ),
}
