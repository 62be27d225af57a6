"""The X adapter against respx-mocked HTTP serving X's documented shapes (platforms.md §1):
the adapter, its door, its session auth and its authenticator are the real ones."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import respx

from social_pipelines.errors import (
    AuthExpired,
    ConfigError,
    Duplicate,
    Inconclusive,
    OutcomeUnknown,
    QuotaExhausted,
    RateLimited,
    Rejected,
    SocialError,
    Transient,
)
from social_pipelines.models import (
    CreatePost,
    Delivery,
    DeliveryKind,
    MediaUpload,
    stage_media,
)
from social_pipelines.platforms import x as x_module
from social_pipelines.platforms.auth import SessionAuth, TokenSet
from social_pipelines.platforms.capabilities import Source
from social_pipelines.platforms.x import (
    AUTHENTICATOR,
    XAccount,
    XAuthenticator,
    XPlatform,
    authorize_url,
    connect,
    exchange_code,
    pkce_pair,
)
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.sessions import MemorySession

BASE = "https://api.x.test"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ME_ID = "2244994945"
CLIENT_ID = "client-id-Yz3"
CLIENT_SECRET = "client-SECRET-9f8e7d"
OLD_ACCESS = "access-SECRET-old"
NEW_ACCESS = "access-SECRET-new"
OLD_REFRESH = "refresh-SECRET-old"
NEW_REFRESH = "refresh-SECRET-new"
SECRETS = (CLIENT_SECRET, OLD_ACCESS, NEW_ACCESS, OLD_REFRESH, NEW_REFRESH)
VARIABLES = {"X_CLIENT_ID": CLIENT_ID, "X_CLIENT_SECRET": CLIENT_SECRET}
PUBLIC = XAccount(name="brand_x", platform="x", client_id_env="X_CLIENT_ID", api_url=BASE)
CONFIDENTIAL = PUBLIC.model_copy(update={"client_secret_env": "X_CLIENT_SECRET"})
TOKENS = TokenSet(access_token=OLD_ACCESS, refresh_token=OLD_REFRESH, subject=ME_ID, handle="brand")
ME = {"data": {"id": ME_ID, "name": "Brand", "username": "brand"}}


def _token_answer(*, refresh: str | None = NEW_REFRESH, access: str = NEW_ACCESS) -> dict[str, Any]:
    """The token endpoint's answer (platforms.md §1.1; observed shape)."""
    body: dict[str, Any] = {
        "token_type": "bearer",
        "expires_in": 7200,
        "access_token": access,
        "scope": "tweet.read tweet.write users.read media.write offline.access",
    }
    if refresh is not None:
        body["refresh_token"] = refresh
    return body


def _bearer(request: httpx.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def _params(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params)


def _assert_no_secret(error: BaseException) -> None:
    """Neither the error nor anything chained to it shows a secret."""
    seen: BaseException | None = error
    visited: set[int] = set()
    while seen is not None and id(seen) not in visited:
        visited.add(id(seen))
        texts = [str(seen), repr(seen), *map(str, seen.args)]
        if isinstance(seen, SocialError):
            texts += [seen.message, seen.detail, seen.full_text]
        for text in texts:
            for secret in SECRETS:
                assert secret not in text
        seen = seen.__cause__ or seen.__context__


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.get("/2/users/me", name="me").respond(200, json=ME)
        router.post("/2/oauth2/token", name="token").respond(200, json=_token_answer())
        yield router


@pytest.fixture
def door() -> RecordingDoor:
    return RecordingDoor()


@pytest.fixture
def session(api: respx.MockRouter, door: RecordingDoor) -> MemorySession:
    return MemorySession(AUTHENTICATOR, PUBLIC, variables=VARIABLES, door=door, tokens=TOKENS)


@pytest.fixture
def x(session: MemorySession, door: RecordingDoor) -> Iterator[XPlatform]:
    platform = XPlatform(
        BASE,
        auth=SessionAuth(session, AUTHENTICATOR.expired),
        door=door,
        timeout=2,
        clock=lambda: NOW,
    )
    with platform:
        yield platform


# -- tokens ---------------------------------------------------------------------------------


def test_requests_carry_the_sessions_access_token_and_whoami_is_the_user(
    api: respx.MockRouter, session: MemorySession, door: RecordingDoor
) -> None:
    with connect(PUBLIC, variables=VARIABLES, door=door, timeout=2, session=session) as platform:
        identity = platform.whoami()
        platform.whoami()  # asked once per connection
    assert (identity.platform, identity.account_id, identity.handle) == ("x", ME_ID, "brand")
    [call] = api.calls
    assert _bearer(call.request) == OLD_ACCESS
    assert [p.endpoint for p in door.passages] == ["me"]


def test_connect_needs_a_session(door: RecordingDoor) -> None:
    with pytest.raises(ConfigError, match="needs a session"):
        connect(PUBLIC, variables=VARIABLES, door=door, timeout=2)


def test_a_401_is_refreshed_once_and_repeated_once(
    api: respx.MockRouter, x: XPlatform, session: MemorySession, door: RecordingDoor
) -> None:
    me = api.routes["me"].mock(
        side_effect=lambda request: (
            httpx.Response(200, json=ME)
            if _bearer(request) == NEW_ACCESS
            else httpx.Response(
                401, json={"title": "Unauthorized", "status": 401, "type": "about:blank"}
            )
        )
    )
    assert x.whoami().account_id == ME_ID
    assert session.refreshes == 1
    assert [_bearer(call.request) for call in me.calls] == [OLD_ACCESS, NEW_ACCESS]
    [token_call] = api.routes["token"].calls  # the token endpoint
    request = token_call.request
    assert request.url.path == "/2/oauth2/token"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {
        "grant_type": "refresh_token",
        "refresh_token": OLD_REFRESH,
        "client_id": CLIENT_ID,  # a public client names itself in the form
    }
    assert "Authorization" not in request.headers
    # Every request, the repeat and the refresh included, passed the door once.
    assert [(p.endpoint, p.status) for p in door.passages] == [
        ("me", 401),
        ("auth", 200),
        ("me", 200),
    ]


def test_a_second_401_after_the_refresh_is_auth_expired_without_another_refresh(
    api: respx.MockRouter, x: XPlatform, session: MemorySession
) -> None:
    me = api.routes["me"].respond(401, json={"title": "Unauthorized", "detail": "Unauthorized"})
    with pytest.raises(AuthExpired) as raised:
        x.whoami()
    assert me.call_count == 2  # the request and its one repeat
    assert session.refreshes == 1
    assert "Unauthorized" in str(raised.value)
    _assert_no_secret(raised.value)


@pytest.mark.parametrize(
    ("answered", "stored"),
    [(NEW_REFRESH, NEW_REFRESH), (None, OLD_REFRESH)],
    ids=["rotated", "none-answered-keeps-the-old"],
)
def test_refresh_rotates_the_refresh_token(
    api: respx.MockRouter, session: MemorySession, answered: str | None, stored: str
) -> None:
    api.routes["token"].respond(200, json=_token_answer(refresh=answered))
    before = datetime.now(UTC)
    tokens = session.renew(TOKENS)
    assert tokens.access_token == NEW_ACCESS
    assert tokens.refresh_token == stored
    assert session.tokens is not None and session.tokens.refresh_token == stored
    assert tokens.subject == ME_ID and tokens.handle == "brand"  # kept by the merge
    assert tokens.expires_at is not None
    assert before + timedelta(seconds=7199) <= tokens.expires_at
    assert tokens.expires_at <= datetime.now(UTC) + timedelta(seconds=7200)
    assert "offline.access" in tokens.scope
    assert all(secret not in repr(tokens) for secret in SECRETS)


@pytest.mark.parametrize(
    "refusal",
    [
        {"error": "invalid_grant", "error_description": "Refresh token has been revoked"},
        # How X is reported to refuse a refresh token used already (unconfirmed wording).
        {
            "error": "invalid_request",
            "error_description": "Value passed for the token was invalid.",
        },
    ],
)
def test_a_refused_refresh_is_auth_expired_in_xs_words(
    api: respx.MockRouter, door: RecordingDoor, refusal: dict[str, str]
) -> None:
    api.routes["token"].respond(400, json=refusal)
    http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
    with pytest.raises(AuthExpired) as raised:
        AUTHENTICATOR.refresh(PUBLIC, TOKENS, variables=VARIABLES, http=http)
    assert refusal["error_description"] in str(raised.value)
    assert raised.value.status_code == 400
    _assert_no_secret(raised.value)


def test_a_401_from_the_token_endpoint_is_auth_expired(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["token"].respond(
        401,
        json={
            "error": "unauthorized_client",
            "error_description": "Missing valid authorization header",
        },
    )
    http = AUTHENTICATOR.client(CONFIDENTIAL, door=door, timeout=2)
    with pytest.raises(AuthExpired, match="Missing valid authorization header") as raised:
        AUTHENTICATOR.refresh(CONFIDENTIAL, TOKENS, variables=VARIABLES, http=http)
    _assert_no_secret(raised.value)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            lambda request: httpx.Response(503, text="<html><title>Over capacity</title></html>"),
            Transient,
        ),
        (lambda request: httpx.Response(500, json={"title": "Internal Error"}), Transient),
        (lambda request: httpx.Response(429, headers={"x-rate-limit-reset": "1"}), RateLimited),
        (lambda request: httpx.Response(200, text="<html>proxy</html>"), Transient),
    ],
    ids=["503", "500", "429", "not-json"],
)
def test_a_token_endpoint_failing_on_the_way_is_retryable_never_a_dead_token(
    api: respx.MockRouter,
    door: RecordingDoor,
    answer: Callable[[httpx.Request], httpx.Response],
    expected: type[SocialError],
) -> None:
    api.routes["token"].mock(side_effect=answer)
    http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
    with pytest.raises(SocialError) as raised:
        AUTHENTICATOR.refresh(PUBLIC, TOKENS, variables=VARIABLES, http=http)
    assert type(raised.value) is expected
    assert raised.value.retryable
    assert not isinstance(raised.value, AuthExpired)


def test_a_connect_error_on_the_token_endpoint_is_transient(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["token"].mock(side_effect=httpx.ConnectError("refused"))
    http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
    with pytest.raises(Transient):
        AUTHENTICATOR.refresh(PUBLIC, TOKENS, variables=VARIABLES, http=http)


def test_a_confidential_client_refreshes_with_basic_auth_and_no_client_id(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    http = AUTHENTICATOR.client(CONFIDENTIAL, door=door, timeout=2)
    AUTHENTICATOR.refresh(CONFIDENTIAL, TOKENS, variables=VARIABLES, http=http)
    request = api.routes["token"].calls.last.request
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    assert _form(request) == {"grant_type": "refresh_token", "refresh_token": OLD_REFRESH}


def test_login_says_x_needs_a_person_and_sends_nothing(door: RecordingDoor) -> None:
    with respx.mock(base_url=BASE) as router:
        http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
        with pytest.raises(AuthExpired) as raised:
            AUTHENTICATOR.login(PUBLIC, variables=VARIABLES, http=http)
        assert not router.calls
    assert "no X tokens are stored" in str(raised.value)
    assert "social-pipelines accounts connect brand_x" in str(raised.value)


def test_tokens_without_a_refresh_token_are_auth_expired_without_a_request(
    door: RecordingDoor,
) -> None:
    with respx.mock(base_url=BASE) as router:
        http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
        with pytest.raises(AuthExpired, match=r"offline\.access"):
            AUTHENTICATOR.refresh(
                PUBLIC, TokenSet(access_token=OLD_ACCESS), variables=VARIABLES, http=http
            )
        assert not router.calls


def test_only_a_401_means_the_access_token_expired() -> None:
    assert AUTHENTICATOR.expired(httpx.Response(401))
    assert not AUTHENTICATOR.expired(httpx.Response(403))
    assert not AUTHENTICATOR.expired(httpx.Response(400, json={"error": "ExpiredToken"}))


# -- connecting an account (accounts connect) -------------------------------------------------


def test_pkce_pair_is_an_s256_verifier_and_challenge() -> None:
    verifier, challenge = pkce_pair()
    assert re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier)  # RFC 7636 §4.1
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert "=" not in challenge
    assert pkce_pair()[0] != verifier


def test_the_authorize_url_is_xs_consent_page_with_every_parameter() -> None:
    url = authorize_url(
        CONFIDENTIAL,
        variables=VARIABLES,
        redirect_uri="http://127.0.0.1:8976/callback",
        state="state-123",
        code_challenge="challenge-abc",
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "x.com", "/i/oauth2/authorize")
    assert {k: v[0] for k, v in parse_qs(parts.query).items()} == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": "http://127.0.0.1:8976/callback",
        "scope": "tweet.read tweet.write users.read media.write offline.access",
        "state": "state-123",
        "code_challenge": "challenge-abc",
        "code_challenge_method": "S256",
    }
    assert "scope=tweet.read%20tweet.write%20" in url  # spaces as X's examples write them
    assert CLIENT_SECRET not in url


def test_the_authorize_url_takes_other_scopes_and_another_consent_page() -> None:
    flow = XAuthenticator(authorize_endpoint="http://127.0.0.1:9/i/oauth2/authorize")
    url = flow.authorize_url(
        PUBLIC,
        variables=VARIABLES,
        redirect_uri="http://127.0.0.1:1/callback",
        state="s",
        code_challenge="c",
        scopes=("tweet.read", "users.read"),
    )
    assert url.startswith("http://127.0.0.1:9/i/oauth2/authorize?")
    assert parse_qs(urlsplit(url).query)["scope"] == ["tweet.read users.read"]


def test_exchange_code_gets_tokens_and_whose_they_are(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["token"].respond(200, json=_token_answer())
    http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
    tokens = exchange_code(
        PUBLIC,
        code="CODE-SECRET-1",
        code_verifier="VERIFIER-SECRET-1",
        redirect_uri="http://127.0.0.1:8976/callback",
        variables=VARIABLES,
        http=http,
    )
    token_request = api.routes["token"].calls.last.request
    assert _form(token_request) == {
        "grant_type": "authorization_code",
        "code": "CODE-SECRET-1",
        "redirect_uri": "http://127.0.0.1:8976/callback",
        "code_verifier": "VERIFIER-SECRET-1",
        "client_id": CLIENT_ID,
    }
    assert (tokens.access_token, tokens.refresh_token) == (NEW_ACCESS, NEW_REFRESH)
    assert (tokens.subject, tokens.handle) == (ME_ID, "brand")
    assert tokens.expires_at is not None and tokens.expires_at > datetime.now(UTC)
    me_request = api.routes["me"].calls.last.request
    assert _bearer(me_request) == NEW_ACCESS
    assert [p.endpoint for p in door.passages] == ["auth", "me"]


def test_exchange_code_keeps_the_tokens_when_the_identity_look_up_fails(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["me"].respond(503)
    http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
    tokens = exchange_code(
        PUBLIC,
        code="c",
        code_verifier="v",
        redirect_uri="http://127.0.0.1:1/cb",
        variables=VARIABLES,
        http=http,
    )
    assert tokens.access_token == NEW_ACCESS and tokens.subject == ""


def test_a_refused_code_is_auth_expired_in_xs_words(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["token"].respond(
        400, json={"error": "invalid_grant", "error_description": "authorization code expired"}
    )
    http = AUTHENTICATOR.client(PUBLIC, door=door, timeout=2)
    with pytest.raises(AuthExpired, match="authorization code expired"):
        exchange_code(
            PUBLIC,
            code="c",
            code_verifier="v",
            redirect_uri="http://127.0.0.1:1/cb",
            variables=VARIABLES,
            http=http,
        )


def test_an_account_takes_exactly_its_fields() -> None:
    with pytest.raises(ValueError, match="client_id_env"):
        XAccount.model_validate({"name": "a", "platform": "x", "client_id_env": "lower"})
    with pytest.raises(ValueError, match="token_env"):
        XAccount.model_validate(
            {"name": "a", "platform": "x", "client_id_env": "A", "token_env": "B"}
        )
    with pytest.raises(ValueError, match="not an http"):
        XAccount.model_validate(
            {"name": "a", "platform": "x", "client_id_env": "A", "api_url": "ftp://x"}
        )
    assert XAccount(name="a", platform="x", client_id_env="A").api_url == "https://api.x.com"
    assert PUBLIC.oauth_client(VARIABLES).client_secret is None
    assert CLIENT_SECRET not in repr(CONFIDENTIAL.oauth_client(VARIABLES))


# -- search and mentions ----------------------------------------------------------------------


def _tweet(
    post_id: str, author: str, text: str, *, minutes_ago: float = 10, **fields: Any
) -> dict[str, Any]:
    created = NOW - timedelta(minutes=minutes_ago)
    return {
        "id": post_id,
        "text": text,
        "author_id": author,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "edit_history_tweet_ids": [post_id],
        **fields,
    }


def _page(tweets: list[dict[str, Any]], *, next_token: str | None = None) -> dict[str, Any]:
    """§1.2 `SearchPostsRecentResponse` / timelines: data, includes.users, meta."""
    users = {t["author_id"] for t in tweets}
    meta: dict[str, Any] = {"result_count": len(tweets)}
    if tweets:
        meta |= {"newest_id": tweets[0]["id"], "oldest_id": tweets[-1]["id"]}
    if next_token:
        meta["next_token"] = next_token
    body: dict[str, Any] = {"meta": meta}
    if tweets:
        body["data"] = tweets
        body["includes"] = {
            "users": [{"id": u, "name": u.title(), "username": f"user_{u}"} for u in sorted(users)]
        }
    return body


def _paged(*pages: dict[str, Any], cursor: str) -> Callable[[httpx.Request], httpx.Response]:
    """Serve `pages` in order, each after the previous page's token."""
    tokens = [None] + [p["meta"].get("next_token") for p in pages[:-1]]

    def answer(request: httpx.Request) -> httpx.Response:
        index = tokens.index(request.url.params.get(cursor))
        return httpx.Response(200, json=pages[index])

    return answer


def test_search_pages_with_next_token_within_the_time_bounds(
    api: respx.MockRouter, x: XPlatform
) -> None:
    first = _page(
        [
            _tweet(
                "301",
                "11",
                "Anyone tried dagster? https://t.co/abcdefghij",
                minutes_ago=5,
                entities={
                    "urls": [
                        {
                            "start": 22,
                            "end": 45,
                            "url": "https://t.co/abcdefghij",
                            "expanded_url": "https://dagster.io/blog",
                            "display_url": "dagster.io/blog",
                        }
                    ]
                },
                lang="en",
            ),
            _tweet("302", ME_ID, "our own dagster reply", minutes_ago=6),
        ],
        next_token="b26v89c19zqg8o3fpds",
    )
    second = _page(
        [
            _tweet(
                "303",
                "12",
                "dagster &amp; friends",
                minutes_ago=90,
                referenced_tweets=[{"type": "replied_to", "id": "299"}],
            )
        ]
    )
    search = api.get("/2/tweets/search/recent").mock(
        side_effect=_paged(first, second, cursor="next_token")
    )
    result = x.search(
        "dagster",
        limit=10,
        since=NOW - timedelta(days=2),
        until=NOW - timedelta(minutes=1),
        source=Source.SEARCH,
    )
    assert [p.id for p in result.posts] == ["301", "303"]
    assert result.complete and result.pages == 2 and result.own_skipped == 1
    hit = result.posts[0]
    assert (hit.author_id, hit.author_handle) == ("11", "user_11")
    assert hit.url == "https://x.com/user_11/status/301"
    assert hit.text == "Anyone tried dagster? https://dagster.io/blog"
    assert hit.language == "en" and hit.in_reply_to_id is None
    assert result.posts[1].in_reply_to_id == "299"
    assert result.posts[1].text == "dagster & friends"
    one, two = (_params(call.request) for call in search.calls)
    assert one == {
        "query": "dagster",
        "max_results": "10",
        "tweet.fields": "created_at,author_id,conversation_id,referenced_tweets,lang,entities",
        "expansions": "author_id",
        "start_time": "2026-11-29T12:00:00Z",
        "end_time": "2026-12-01T11:59:00Z",
    }
    assert two == one | {"next_token": "b26v89c19zqg8o3fpds"}


def test_a_search_older_than_seven_days_is_clamped_and_reported(
    api: respx.MockRouter, x: XPlatform
) -> None:
    search = api.get("/2/tweets/search/recent").respond(
        200, json=_page([_tweet("1", "11", "dagster")])
    )
    result = x.search("dagster", limit=10, since=NOW - timedelta(days=30), source=Source.SEARCH)
    params = _params(search.calls.last.request)
    assert params["start_time"] == "2026-11-24T12:01:00Z"  # 7 days less a minute's margin
    assert "end_time" not in params  # no `until`: up to now
    assert not result.complete
    assert "7-day" in result.stopped_by and "2026-11-24 12:01" in result.stopped_by
    assert [p.id for p in result.posts] == ["1"]


def test_a_until_too_recent_for_x_is_left_to_the_local_filter(
    api: respx.MockRouter, x: XPlatform
) -> None:
    search = api.get("/2/tweets/search/recent").respond(
        200,
        json=_page(
            [
                _tweet("2", "11", "dagster", minutes_ago=0),
                _tweet("1", "11", "dagster", minutes_ago=3),
            ]
        ),
    )
    result = x.search(
        "dagster",
        limit=10,
        since=NOW - timedelta(hours=1),
        until=NOW - timedelta(minutes=1),
        source=Source.SEARCH,
    )
    assert [p.id for p in result.posts] == ["1"]
    assert "end_time" in _params(search.calls.last.request)
    x.search("dagster", limit=10, since=NOW - timedelta(hours=1), until=NOW, source=Source.SEARCH)
    assert "end_time" not in _params(search.calls.last.request)  # X refuses the last 10 s


def test_the_search_limit_stops_it_and_says_so(api: respx.MockRouter, x: XPlatform) -> None:
    tweets = [_tweet(str(100 - i), "11", f"dagster {i}", minutes_ago=i) for i in range(10)]
    search = api.get("/2/tweets/search/recent").respond(200, json=_page(tweets, next_token="more"))
    result = x.search("dagster", limit=4, since=NOW - timedelta(days=1), source=Source.SEARCH)
    assert len(result.posts) == 4 and search.call_count == 1
    assert not result.complete and result.stopped_by == "search_limit=4"
    assert result.not_examined == 6 and result.more_beyond
    assert _params(search.calls.last.request)["max_results"] == "10"  # X's smallest page


def test_mentions_page_with_pagination_token_and_keep_what_matches_the_query(
    api: respx.MockRouter, x: XPlatform
) -> None:
    first = _page(
        [
            _tweet("501", "21", "@brand how do I schedule a Dagster job?", minutes_ago=2),
            _tweet("500", "22", "@brand nice weather", minutes_ago=3),
        ],
        next_token="7140dibdnow9c7btw423x",
    )
    second = _page(
        [_tweet("499", "23", "@brand SCHEDULE question about dagster", minutes_ago=60 * 24 * 9)]
    )
    mentions = api.get(f"/2/users/{ME_ID}/mentions").mock(
        side_effect=_paged(first, second, cursor="pagination_token")
    )
    result = x.search("dagster schedule", limit=10, since=NOW - timedelta(days=10))
    assert [p.id for p in result.posts] == ["501", "499"]  # X's default source: mentions
    assert result.complete and result.pages == 2
    one, two = (_params(call.request) for call in mentions.calls)
    assert one["start_time"] == "2026-11-21T12:00:00Z"  # no 7-day window on mentions
    assert one["max_results"] == "10" and one["expansions"] == "author_id"
    assert "pagination_token" not in one
    assert two["pagination_token"] == "7140dibdnow9c7btw423x"


def test_a_source_x_does_not_read_is_refused(x: XPlatform) -> None:
    with pytest.raises(ConfigError, match="hashtag"):
        x.search("#dagster", limit=5, since=NOW - timedelta(days=1), source=Source.HASHTAG)


# -- creating ---------------------------------------------------------------------------------


def _created(post_id: str = "1445880548472328192", text: str = "hi") -> httpx.Response:
    """§1.2 create: 201 `{"data":{"id","text","edit_history_tweet_ids"}}`."""
    return httpx.Response(
        201, json={"data": {"id": post_id, "text": text, "edit_history_tweet_ids": [post_id]}}
    )


def test_create_sends_the_text_and_no_dedupe_handle(
    api: respx.MockRouter, x: XPlatform, door: RecordingDoor
) -> None:
    create = api.post("/2/tweets").mock(return_value=_created())
    x.whoami()
    published = x.create_post(CreatePost(text="Hello from Dagster"), idempotency_key="delivery-1")
    assert published.remote_id == "1445880548472328192"
    assert published.url == "https://x.com/brand/status/1445880548472328192"
    request = create.calls.last.request
    assert json.loads(request.content) == {"text": "Hello from Dagster"}
    assert "delivery-1" not in str(request.headers) and b"delivery-1" not in request.content
    assert door.passages[-1].endpoint == "write"


def test_a_reply_with_media_names_the_post_and_the_uploads(
    api: respx.MockRouter, x: XPlatform
) -> None:
    create = api.post("/2/tweets").mock(return_value=_created("42"))
    published = x.create_post(
        CreatePost(text="Thanks!", in_reply_to_id="1399", media_ids=("1146654567674912769",)),
        idempotency_key="d",
    )
    assert json.loads(create.calls.last.request.content) == {
        "text": "Thanks!",
        "reply": {"in_reply_to_tweet_id": "1399"},
        "media": {"media_ids": ["1146654567674912769"]},
    }
    assert published.url == "https://x.com/i/status/42"  # the username not asked for


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _uploaded(media_id: str = "1146654567674912769") -> httpx.Response:
    """§1.2 `MediaUploadResponseData`."""
    return httpx.Response(
        200,
        json={
            "data": {
                "id": media_id,
                "media_key": f"3_{media_id}",
                "size": len(PNG),
                "expires_after_secs": 86400,
                "image": {"image_type": "image/png", "w": 1, "h": 1},
            }
        },
    )


def test_an_upload_sends_the_image_then_its_alt_text(
    api: respx.MockRouter, x: XPlatform, door: RecordingDoor
) -> None:
    upload = api.post("/2/media/upload").mock(return_value=_uploaded())
    metadata = api.post("/2/media/metadata").respond(
        200, json={"data": {"id": "1146654567674912769", "associated_metadata": True}}
    )
    ref = x.upload_media(
        MediaUpload(data=PNG, mime_type="image/png", alt_text="A chart", filename="chart.png")
    )
    assert (ref.platform, ref.id) == ("x", "1146654567674912769")
    sent = upload.calls.last.request
    assert sent.headers["Content-Type"].startswith("multipart/form-data")
    assert b'name="media_category"\r\n\r\ntweet_image' in sent.content
    assert b'name="media"; filename="chart.png"' in sent.content and PNG in sent.content
    assert json.loads(metadata.calls.last.request.content) == {
        "id": "1146654567674912769",
        "metadata": {"alt_text": {"text": "A chart"}},
    }
    assert [p.endpoint for p in door.passages] == ["media", "media_metadata"]


def test_an_upload_without_alt_text_sets_none(api: respx.MockRouter, x: XPlatform) -> None:
    api.post("/2/media/upload").mock(return_value=_uploaded())
    metadata = api.post("/2/media/metadata").respond(200, json={"data": {}})
    x.upload_media(MediaUpload(data=PNG, mime_type="image/png"))
    assert not metadata.called


@pytest.mark.parametrize(
    ("media", "words"),
    [
        (MediaUpload(data=PNG, mime_type="image/png", alt_text="a" * 1001), "at most 1000"),
        (MediaUpload(data=b"\x00" * (5 * 1024 * 1024 + 1), mime_type="image/png"), "5 MB"),
        (MediaUpload(data=PNG, mime_type="image/heic"), "image/heic"),
    ],
    ids=["alt-text", "size", "type"],
)
def test_what_x_refuses_is_refused_before_anything_is_sent(
    api: respx.MockRouter, x: XPlatform, door: RecordingDoor, media: MediaUpload, words: str
) -> None:
    with pytest.raises(Rejected, match=words):
        x.upload_media(media)
    assert not api.calls and not door.passages


def test_an_upload_whose_media_key_does_not_name_its_id_is_refused(
    api: respx.MockRouter, x: XPlatform
) -> None:
    answer = _uploaded("111").json()
    answer["data"]["media_key"] = "3_222"
    api.post("/2/media/upload").respond(200, json=answer)
    with pytest.raises(Rejected, match="3_222"):
        x.upload_media(MediaUpload(data=PNG, mime_type="image/png"))


def test_an_upload_x_could_not_process_is_rejected(api: respx.MockRouter, x: XPlatform) -> None:
    answer = _uploaded().json()
    answer["data"]["processing_info"] = {"state": "failed", "error": {"message": "InvalidMedia"}}
    api.post("/2/media/upload").respond(200, json=answer)
    with pytest.raises(Rejected, match="InvalidMedia"):
        x.upload_media(MediaUpload(data=PNG, mime_type="image/png"))


# -- errors -----------------------------------------------------------------------------------

RESET = NOW + timedelta(minutes=7)


def _problem(
    status: int, title: str, detail: str, kind: str = "about:blank", **extra: Any
) -> httpx.Response:
    return httpx.Response(
        status, json={"title": title, "detail": detail, "type": kind, "status": status, **extra}
    )


@pytest.mark.parametrize(
    ("answer", "expected", "words"),
    [
        (
            _problem(
                403, "Forbidden", "You are not allowed to create a Tweet with duplicate content."
            ),
            Duplicate,
            "duplicate content",
        ),
        (
            httpx.Response(
                403, json={"errors": [{"code": 187, "message": "Status is a duplicate."}]}
            ),
            Duplicate,
            "Status is a duplicate.",
        ),
        (
            _problem(
                403,
                "Forbidden",
                "You are not permitted to perform this action.",
                "https://api.x.com/2/problems/client-forbidden",
            ),
            Rejected,
            "You are not permitted to perform this action. [client-forbidden]",
        ),
        (
            _problem(
                400,
                "Invalid Request",
                "One or more parameters to your request was invalid.",
                "https://api.x.com/2/problems/invalid-request",
            ),
            Rejected,
            "Invalid Request: One or more parameters",
        ),
        (httpx.Response(500, json={"title": "Internal Server Error"}), OutcomeUnknown, ""),
        (
            httpx.Response(502, text="<html><title>502 Bad Gateway</title></html>"),
            OutcomeUnknown,
            "",
        ),
        (httpx.Response(504), OutcomeUnknown, ""),
        (httpx.Response(503, text="Over capacity"), Transient, ""),
        (
            httpx.Response(201, json={"errors": [{"title": "Something", "detail": "went odd"}]}),
            OutcomeUnknown,
            "went odd",
        ),
        (httpx.Response(201, text="<html>accepted</html>"), OutcomeUnknown, "not a JSON object"),
    ],
    ids=[
        "403-duplicate",
        "403-v1.1-187",
        "403-client-forbidden",
        "400-invalid-request",
        "500",
        "502",
        "504",
        "503",
        "201-only-errors",
        "201-not-json",
    ],
)
def test_what_a_create_answer_means(
    api: respx.MockRouter,
    x: XPlatform,
    answer: httpx.Response,
    expected: type[SocialError],
    words: str,
) -> None:
    api.post("/2/tweets").mock(return_value=answer)
    with pytest.raises(SocialError) as raised:
        x.create_post(CreatePost(text="hi"), idempotency_key="d")
    assert type(raised.value) is expected
    assert words in str(raised.value)
    if expected in (Duplicate, Rejected):
        assert not raised.value.retryable


@pytest.mark.parametrize(
    "detail",
    [
        # Observed for an author's reply settings (gptme/gptme-contrib#811).
        "Reply to this conversation is not allowed because you have not been mentioned or "
        "otherwise engaged by the author of the post you are replying to.",
        # §1.2's documented rule, in its own words.
        "Replies via the API are only permitted if the replying account has been explicitly "
        "summoned by the original post's author.",
    ],
)
def test_a_reply_refused_by_the_reply_restriction_is_rejected_in_xs_words(
    api: respx.MockRouter, x: XPlatform, detail: str
) -> None:
    create = api.post("/2/tweets").mock(return_value=_problem(403, "Forbidden", detail))
    with pytest.raises(Rejected) as raised:
        x.create_post(CreatePost(text="Thanks!", in_reply_to_id="1399"), idempotency_key="d")
    assert "reply restriction" in str(raised.value) and detail in raised.value.message
    assert not raised.value.retryable and create.call_count == 1


def test_a_create_refused_with_401_is_refreshed_once_then_auth_expired(
    api: respx.MockRouter, x: XPlatform, session: MemorySession
) -> None:
    create = api.post("/2/tweets").respond(
        401, json={"title": "Unauthorized", "detail": "Unauthorized"}
    )
    with pytest.raises(AuthExpired):
        x.create_post(CreatePost(text="hi"), idempotency_key="d")
    assert create.call_count == 2 and session.refreshes == 1
    assert [_bearer(c.request) for c in create.calls] == [OLD_ACCESS, NEW_ACCESS]


def test_a_429_waits_until_x_rate_limit_reset(api: respx.MockRouter, x: XPlatform) -> None:
    reset = datetime.now(UTC) + timedelta(minutes=7)
    api.post("/2/tweets").respond(
        429,
        headers={
            "x-rate-limit-limit": "100",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(int(reset.timestamp())),
        },
        json={"title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank"},
    )
    with pytest.raises(RateLimited) as raised:
        x.create_post(CreatePost(text="hi"), idempotency_key="d")
    assert raised.value.retry_after is not None
    assert 7 * 60 - 5 <= raised.value.retry_after <= 7 * 60
    assert "Too Many Requests" in str(raised.value)


def test_a_usage_cap_is_quota_exhausted_until_the_reset(
    api: respx.MockRouter, x: XPlatform
) -> None:
    # As observed (xdevplatform/xdk#25): the rate window was fine, the cap was not.
    api.post("/2/tweets").respond(
        429,
        headers={
            "x-rate-limit-remaining": "39999",
            "x-rate-limit-reset": str(int(RESET.timestamp())),
        },
        json={
            "title": "UsageCapExceeded",
            "detail": "Usage cap exceeded: Monthly product cap",
            "type": "https://api.twitter.com/2/problems/usage-capped",
            "period": "Monthly",
            "scope": "Product",
        },
    )
    with pytest.raises(QuotaExhausted) as raised:
        x.create_post(CreatePost(text="hi"), idempotency_key="d")
    assert raised.value.until == RESET
    assert "Monthly product cap" in str(raised.value) and "Monthly" in raised.value.message
    assert not raised.value.retryable


def test_a_read_failing_on_the_way_is_transient(api: respx.MockRouter, x: XPlatform) -> None:
    api.get("/2/tweets/search/recent").respond(500, json={"title": "Internal Server Error"})
    with pytest.raises(Transient):
        x.search("dagster", limit=5, since=NOW - timedelta(hours=1), source=Source.SEARCH)


def test_rate_headers_reach_the_door(
    api: respx.MockRouter, x: XPlatform, door: RecordingDoor
) -> None:
    api.routes["me"].respond(
        200,
        json=ME,
        headers={
            "x-rate-limit-limit": "75",
            "x-rate-limit-remaining": "74",
            "x-rate-limit-reset": "1796126400",
        },
    )
    x.whoami()
    [(endpoint, info)] = door.observed
    assert endpoint == "me"
    assert (info.limit, info.remaining) == (75, 74)
    assert info.reset_at == datetime.fromtimestamp(1796126400, UTC)


# -- reconciliation ---------------------------------------------------------------------------


def _delivery(kind: DeliveryKind, subject: str, text: str, **fields: Any) -> Delivery:
    return Delivery(
        delivery_id="d-1",
        kind=kind,
        subject=subject,
        text=text,
        planned_at=NOW - timedelta(minutes=30),
        **fields,
    )


def test_a_reply_is_found_by_the_post_it_answers(api: respx.MockRouter, x: XPlatform) -> None:
    first = _page(
        [
            _tweet(
                "901", ME_ID, "Thanks!", referenced_tweets=[{"type": "replied_to", "id": "1399"}]
            ),
            _tweet("900", ME_ID, "other", referenced_tweets=[{"type": "replied_to", "id": "1300"}]),
        ],
        next_token="next-1",
    )
    second = _page(
        [
            _tweet(
                "899",
                ME_ID,
                "Thanks!",
                minutes_ago=20,
                referenced_tweets=[{"type": "replied_to", "id": "1400"}],
            )
        ]
    )
    timeline = api.get(f"/2/users/{ME_ID}/tweets").mock(
        side_effect=_paged(first, second, cursor="pagination_token")
    )
    found = x.find_delivery(
        _delivery(DeliveryKind.REPLY, "1400", "Thanks!", taken_ids=frozenset({"901"}))
    )
    assert found is not None and found.remote_id == "899"
    assert found.url == "https://x.com/brand/status/899"
    assert found.created_at == NOW - timedelta(minutes=20)
    params = _params(timeline.calls[0].request)
    assert params == {
        "max_results": "100",
        "tweet.fields": "created_at,referenced_tweets,entities,attachments",
        "start_time": "2026-12-01T11:29:00Z",  # the plan, less a minute
    }
    assert _params(timeline.calls[1].request)["pagination_token"] == "next-1"


def _published_with_link_and_image(post_id: str, media_id: str) -> dict[str, Any]:
    """How X gives back a post written as "New release & notes\\n\\nhttps://example.com/r/1"
    with one image: the link as t.co, a t.co link for the image appended, `&` escaped."""
    return _tweet(
        post_id,
        ME_ID,
        "New release &amp; notes\n\nhttps://t.co/AAAAAAAAAA https://t.co/BBBBBBBBBB",
        attachments={"media_keys": [f"3_{media_id}"]},
        entities={
            "urls": [
                {
                    "start": 25,
                    "end": 48,
                    "url": "https://t.co/AAAAAAAAAA",
                    "expanded_url": "https://example.com/r/1",
                    "display_url": "example.com/r/1",
                },
                {
                    "start": 49,
                    "end": 72,
                    "url": "https://t.co/BBBBBBBBBB",
                    "expanded_url": f"https://x.com/brand/status/{post_id}/photo/1",
                    "display_url": "pic.x.com/BBBBBBBBBB",
                    "media_key": f"3_{media_id}",
                },
            ]
        },
    )


def test_a_publish_is_found_by_its_text_as_written_and_its_uploads(
    api: respx.MockRouter, x: XPlatform
) -> None:
    text = "New release & notes\n\nhttps://example.com/r/1"
    api.get(f"/2/users/{ME_ID}/tweets").respond(
        200,
        json=_page(
            [
                _published_with_link_and_image("702", "555"),  # same text, another image: another's
                _published_with_link_and_image("701", "444"),
            ]
        ),
    )
    delivery = _delivery(
        DeliveryKind.PUBLISH, "post-1/brand_x", text, staged_id=stage_media(1, ["444"])
    )
    found = x.find_delivery(delivery)
    assert found is not None and found.remote_id == "701"
    # Without the staged upload, neither is it (both carry an image).
    assert x.find_delivery(_delivery(DeliveryKind.PUBLISH, "post-1/brand_x", text)) is None


def test_a_publish_not_among_our_posts_is_a_miss(api: respx.MockRouter, x: XPlatform) -> None:
    api.get(f"/2/users/{ME_ID}/tweets").respond(
        200, json=_page([_tweet("1", ME_ID, "something else")])
    )
    assert x.find_delivery(_delivery(DeliveryKind.PUBLISH, "p/brand_x", "Hello")) is None


def test_an_empty_timeline_is_a_miss(api: respx.MockRouter, x: XPlatform) -> None:
    api.get(f"/2/users/{ME_ID}/tweets").respond(200, json={"meta": {"result_count": 0}})
    assert x.find_delivery(_delivery(DeliveryKind.REPLY, "1", "Thanks!")) is None


def test_reconciliation_that_cannot_reach_the_plan_is_inconclusive(
    api: respx.MockRouter, x: XPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(x_module, "RECONCILE_LIMIT", 3)
    page = _page([_tweet(str(i), ME_ID, "other") for i in range(3)], next_token="more")
    api.get(f"/2/users/{ME_ID}/tweets").respond(200, json=page)
    with pytest.raises(Inconclusive, match="newest 3 own posts"):
        x.find_delivery(_delivery(DeliveryKind.PUBLISH, "p/brand_x", "Hello"))


def test_a_media_key_of_another_shape_is_inconclusive_not_a_miss(
    api: respx.MockRouter, x: XPlatform
) -> None:
    tweet = _tweet("1", ME_ID, "Hello", attachments={"media_keys": ["weird-key"]})
    api.get(f"/2/users/{ME_ID}/tweets").respond(200, json=_page([tweet]))
    with pytest.raises(Inconclusive, match="weird-key"):
        x.find_delivery(
            _delivery(DeliveryKind.PUBLISH, "p/brand_x", "Hello", staged_id=stage_media(1, ["9"]))
        )


def test_a_create_answered_with_its_post_and_partial_errors_is_published(
    api: respx.MockRouter, x: XPlatform
) -> None:
    # §1.5: a 2xx may carry `errors` beside `data` (about other resources): the post is out.
    api.post("/2/tweets").respond(
        201,
        json={
            "data": {"id": "77", "text": "hi"},
            "errors": [{"title": "Not Found Error", "detail": "Could not find user [1]."}],
        },
    )
    assert x.create_post(CreatePost(text="hi"), idempotency_key="d").remote_id == "77"


def test_a_search_wholly_before_the_seven_days_asks_nothing(
    api: respx.MockRouter, x: XPlatform
) -> None:
    search = api.get("/2/tweets/search/recent").respond(200, json=_page([]))
    result = x.search(
        "dagster",
        limit=5,
        since=NOW - timedelta(days=20),
        until=NOW - timedelta(days=10),
        source=Source.SEARCH,
    )
    assert result.posts == [] and not result.complete and "7-day" in result.stopped_by
    assert not search.called


def test_a_success_without_data_is_transient(api: respx.MockRouter, x: XPlatform) -> None:
    api.routes["me"].respond(200, json={"errors": [{"title": "Forbidden", "detail": "suspended"}]})
    with pytest.raises(Transient, match="suspended"):
        x.whoami()
