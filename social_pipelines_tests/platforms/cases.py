"""What the conformance suite needs to know of each platform: documented answers only.

One entry per registered adapter (the suite fails for an adapter without one): a valid
account, the credentials it reads, the platform's success answer to each request the
checks send, how it says "duplicate" (None where it has no such answer, with why), and a
set of its rate-limit headers with what they announce.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from social_pipelines.platforms.account import AccountBase
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.platforms.mastodon import MastodonAccount

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


CASES: dict[str, Case] = {
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
}
