"""The Bluesky adapter against respx-mocked XRPC serving the documented shapes (platforms.md
§2, the atproto lexicons, bsky-docs posts.md): the adapter, its door, its session auth and
its authenticator are the real ones."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from social_pipelines.errors import (
    AuthExpired,
    ConfigError,
    Inconclusive,
    OutcomeUnknown,
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
from social_pipelines.platforms import bluesky as bluesky_module
from social_pipelines.platforms import tid
from social_pipelines.platforms.auth import TokenSet
from social_pipelines.platforms.bluesky import (
    AUTHENTICATOR,
    POLICY,
    SPEC,
    BlobRef,
    BlueskyAccount,
    BlueskyPlatform,
    connect,
    decode_media_id,
    encode_media_id,
)
from social_pipelines.platforms.capabilities import Capability, Source
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.sessions import MemorySession

ENTRYWAY = "https://entryway.test"
PDS = "https://pds.test"
APPVIEW = "https://appview.test"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PLANNED = datetime(2026, 12, 1, 11, 30, 15, 654321, tzinfo=UTC)
DID = "did:plc:brandbrandbrandbrandbran"
HANDLE = "brand.bsky.social"
OTHER = "did:plc:aliceealiceealiceealicee"
POST = "app.bsky.feed.post"
APP_PASSWORD = "abcd-SECRET-ijkl-mnop"
KEY = "3f9c2a7d1e6b4c5a8d0e9f1a2b3c4d5e"  # a delivery id
TID_RE = re.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


def _jwt(label: str, expires: datetime) -> str:
    """A JWT-shaped token with an `exp` (the adapter reads it, never verifies it)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    claims = {"sub": DID, "exp": int(expires.timestamp()), "jti": label}
    return f"{part({'alg': 'HS256', 'typ': 'at+jwt'})}.{part(claims)}.{label}"


OLD_ACCESS = _jwt("oldaccessSECRET", NOW + timedelta(hours=2))
NEW_ACCESS = _jwt("newaccessSECRET", NOW + timedelta(hours=2))
OLD_REFRESH = _jwt("oldrefreshSECRET", NOW + timedelta(days=90))
NEW_REFRESH = _jwt("newrefreshSECRET", NOW + timedelta(days=90))
SECRETS = (APP_PASSWORD, OLD_ACCESS, NEW_ACCESS, OLD_REFRESH, NEW_REFRESH, "SECRET")
VARIABLES = {"BSKY_APP_PASSWORD": APP_PASSWORD}
ACCOUNT = BlueskyAccount(
    name="brand_bsky",
    platform="bluesky",
    handle=HANDLE,
    app_password_env="BSKY_APP_PASSWORD",
    pds_url=ENTRYWAY,
)
WITH_APPVIEW = ACCOUNT.model_copy(update={"appview_url": APPVIEW})
TOKENS = TokenSet(
    access_token=OLD_ACCESS,
    refresh_token=OLD_REFRESH,
    subject=DID,
    handle=HANDLE,
    endpoint=PDS,
)


def _xrpc(nsid: str, base: str = PDS) -> str:
    return f"{base}/xrpc/{nsid}"


def _did_doc(endpoint: str = PDS) -> dict[str, Any]:
    """A DID document as createSession returns it (entryway.md: the user's PDS is in it)."""
    return {
        "@context": ["https://www.w3.org/ns/did/v1"],
        "id": DID,
        "alsoKnownAs": [f"at://{HANDLE}"],
        "service": [
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": endpoint}
        ],
    }


def _session(
    access: str = NEW_ACCESS, refresh: str | None = NEW_REFRESH, *, did_doc: Any = None
) -> dict[str, Any]:
    """createSession / refreshSession's answer (lexicons com.atproto.server.*Session)."""
    body: dict[str, Any] = {"accessJwt": access, "handle": HANDLE, "did": DID}
    if refresh is not None:
        body["refreshJwt"] = refresh
    if did_doc is not None:
        body["didDoc"] = did_doc
    return body


def _error(name: str, message: str) -> dict[str, str]:
    return {"error": name, "message": message}


EXPIRED = _error("ExpiredToken", "Token has expired")


def _bearer(request: httpx.Request) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def _body(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _rkey(when: datetime, clock: int = 0) -> str:
    return tid.make((when - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1), clock)


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
    with respx.mock(assert_all_called=False) as router:
        router.post(_xrpc("com.atproto.server.createSession", ENTRYWAY), name="login").respond(
            200, json=_session(did_doc=_did_doc())
        )
        router.post(_xrpc("com.atproto.server.refreshSession", ENTRYWAY), name="refresh").respond(
            200, json=_session(did_doc=_did_doc())
        )
        router.get(_xrpc("com.atproto.server.getSession"), name="me").respond(
            200, json={"handle": HANDLE, "did": DID}
        )
        yield router


@pytest.fixture
def door() -> RecordingDoor:
    return RecordingDoor()


@pytest.fixture
def session(api: respx.MockRouter, door: RecordingDoor) -> MemorySession:
    return MemorySession(AUTHENTICATOR, ACCOUNT, variables=VARIABLES, door=door, tokens=TOKENS)


@pytest.fixture
def bsky(session: MemorySession, door: RecordingDoor) -> Iterator[BlueskyPlatform]:
    with BlueskyPlatform(
        ACCOUNT, session=session, door=door, timeout=2, clock=lambda: NOW
    ) as platform:
        yield platform


# -- the account ----------------------------------------------------------------------------


def test_the_account_has_exactly_its_fields_with_the_entryway_by_default() -> None:
    account = BlueskyAccount.model_validate(
        {
            "name": "b",
            "platform": "bluesky",
            "handle": "@Brand.bsky.social",
            "app_password_env": "BSKY_APP_PASSWORD",
        }
    )
    assert account.handle == "Brand.bsky.social"  # the `@` people write is dropped
    assert account.pds_url == "https://bsky.social"
    assert account.appview_url is None
    assert set(BlueskyAccount.model_fields) - {"name", "platform", "policy"} == {
        "handle",
        "app_password_env",
        "pds_url",
        "appview_url",
    }


def test_the_account_expands_its_urls_and_refuses_what_is_not_one() -> None:
    data = {
        "name": "b",
        "platform": "bluesky",
        "handle": HANDLE,
        "app_password_env": "BSKY_APP_PASSWORD",
        "pds_url": "${PDS_HOST}/",
        "appview_url": "${APPVIEW_HOST}",
    }
    account = BlueskyAccount.model_validate(
        data, context={"variables": {"PDS_HOST": PDS, "APPVIEW_HOST": APPVIEW}}
    )
    assert (account.pds_url, account.appview_url) == (PDS, APPVIEW)
    for field, value in (
        ("pds_url", "pds.test"),
        ("appview_url", "ftp://x"),
        ("app_password_env", "lower"),
        ("handle", "not a handle"),
    ):
        with pytest.raises(ValueError, match=field):
            BlueskyAccount.model_validate(
                data | {field: value},
                context={"variables": {"PDS_HOST": PDS, "APPVIEW_HOST": APPVIEW}},
            )


def test_a_missing_app_password_names_the_variable_not_a_value(door: RecordingDoor) -> None:
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(ConfigError, match="BSKY_APP_PASSWORD"):
        AUTHENTICATOR.login(ACCOUNT, variables={}, http=http)
    assert door.passages == []


# -- sessions -------------------------------------------------------------------------------


def test_login_is_create_session_with_the_handle_and_app_password(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    tokens = AUTHENTICATOR.login(ACCOUNT, variables=VARIABLES, http=http)
    [call] = api.routes["login"].calls
    assert str(call.request.url) == _xrpc("com.atproto.server.createSession", ENTRYWAY)
    assert _body(call.request) == {"identifier": HANDLE, "password": APP_PASSWORD}
    assert (tokens.access_token, tokens.refresh_token) == (NEW_ACCESS, NEW_REFRESH)
    assert (tokens.subject, tokens.handle) == (DID, HANDLE)
    assert tokens.endpoint == PDS  # the DID document's #atproto_pds, not the entryway
    assert tokens.expires_at == datetime.fromtimestamp(
        int((NOW + timedelta(hours=2)).timestamp()), UTC
    )
    assert tokens.refresh_expires_at is not None
    assert tokens.refresh_expires_at > tokens.expires_at
    assert [p.endpoint for p in door.passages] == ["login"]
    assert all(secret not in repr(tokens) for secret in SECRETS)


@pytest.mark.parametrize(
    "did_doc",
    [None, _did_doc("http://pds.test"), {"service": "nonsense"}],
    ids=["no-did-doc", "plain-http-endpoint", "unreadable"],
)
def test_login_without_a_usable_pds_in_the_did_document_keeps_pds_url(
    api: respx.MockRouter, door: RecordingDoor, did_doc: Any
) -> None:
    api.routes["login"].respond(200, json=_session(did_doc=did_doc))
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    assert AUTHENTICATOR.login(ACCOUNT, variables=VARIABLES, http=http).endpoint == ENTRYWAY


def test_a_new_session_is_logged_in_once_and_reused_by_a_second_adapter(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    first = MemorySession(AUTHENTICATOR, ACCOUNT, variables=VARIABLES, door=door)
    with connect(ACCOUNT, variables=VARIABLES, door=door, timeout=2, session=first) as adapter:
        identity = adapter.whoami()
    assert (identity.platform, identity.account_id, identity.handle) == ("bluesky", DID, HANDLE)
    assert first.logins == 1
    second = MemorySession(
        AUTHENTICATOR, ACCOUNT, variables=VARIABLES, door=door, tokens=first.tokens
    )
    with connect(ACCOUNT, variables=VARIABLES, door=door, timeout=2, session=second) as adapter:
        adapter.whoami()
    assert second.logins == 0
    assert api.routes["login"].call_count == 1
    me = api.routes["me"].calls
    assert len(me) == 2 and all(_bearer(call.request) == NEW_ACCESS for call in me)
    assert all(str(call.request.url).startswith(PDS) for call in me)  # the account's PDS


def test_connect_needs_a_session(door: RecordingDoor) -> None:
    with pytest.raises(ConfigError, match="needs a session"):
        connect(ACCOUNT, variables=VARIABLES, door=door, timeout=2)


def test_an_expired_token_is_refreshed_once_and_the_request_repeated_once(
    api: respx.MockRouter, bsky: BlueskyPlatform, session: MemorySession, door: RecordingDoor
) -> None:
    me = api.routes["me"].mock(
        side_effect=lambda request: (
            httpx.Response(200, json={"handle": HANDLE, "did": DID})
            if _bearer(request) == NEW_ACCESS
            else httpx.Response(400, json=EXPIRED)
        )
    )
    assert bsky.whoami().account_id == DID
    assert session.refreshes == 1
    assert [_bearer(call.request) for call in me.calls] == [OLD_ACCESS, NEW_ACCESS]
    [refresh] = api.routes["refresh"].calls
    assert str(refresh.request.url) == _xrpc("com.atproto.server.refreshSession", ENTRYWAY)
    assert refresh.request.content == b""  # no body
    assert _bearer(refresh.request) == OLD_REFRESH  # the refresh JWT, not the access JWT
    assert [(p.endpoint, p.status) for p in door.passages] == [
        ("read", 400),
        ("auth", 200),
        ("read", 200),
    ]


def test_an_expired_answer_after_the_refresh_is_auth_expired_without_another(
    api: respx.MockRouter, bsky: BlueskyPlatform, session: MemorySession
) -> None:
    me = api.routes["me"].respond(400, json=EXPIRED)
    with pytest.raises(AuthExpired) as raised:
        bsky.whoami()
    assert me.call_count == 2  # the request and its one repeat
    assert session.refreshes == 1
    assert "ExpiredToken: Token has expired" in str(raised.value)
    _assert_no_secret(raised.value)


def test_an_invalid_token_is_refreshed_once_too(
    api: respx.MockRouter, bsky: BlueskyPlatform, session: MemorySession
) -> None:
    api.routes["me"].mock(
        side_effect=lambda request: (
            httpx.Response(200, json={"handle": HANDLE, "did": DID})
            if _bearer(request) == NEW_ACCESS
            else httpx.Response(400, json=_error("InvalidToken", "Token could not be verified"))
        )
    )
    assert bsky.whoami().account_id == DID
    assert session.refreshes == 1


def test_a_bare_401_is_auth_expired_without_a_refresh(
    api: respx.MockRouter, bsky: BlueskyPlatform, session: MemorySession
) -> None:
    me = api.routes["me"].respond(401, json=_error("AuthMissing", "Authentication Required"))
    with pytest.raises(AuthExpired, match="AuthMissing"):
        bsky.whoami()
    assert me.call_count == 1
    assert session.refreshes == 0


@pytest.mark.parametrize(
    ("answered", "stored"),
    [(NEW_REFRESH, NEW_REFRESH), (None, OLD_REFRESH)],
    ids=["rotated", "none-answered-keeps-the-old"],
)
def test_refresh_rotates_the_refresh_token(
    api: respx.MockRouter, session: MemorySession, answered: str | None, stored: str
) -> None:
    api.routes["refresh"].respond(200, json=_session(refresh=answered))
    tokens = session.renew(TOKENS)
    assert tokens.access_token == NEW_ACCESS
    assert tokens.refresh_token == stored
    assert session.tokens is not None and session.tokens.refresh_token == stored
    assert tokens.endpoint == PDS  # no DID document answered: the stored endpoint stays
    assert (tokens.subject, tokens.handle) == (DID, HANDLE)
    assert tokens.expires_at is not None
    assert all(secret not in repr(tokens) for secret in SECRETS)


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (400, _error("ExpiredToken", "Token has expired")),
        (400, _error("InvalidToken", "Token has been revoked")),
        (400, _error("AccountTakedown", "Account has been taken down")),
        (401, _error("AuthenticationRequired", "Authentication Required")),
    ],
    ids=["expired", "invalid", "takedown", "401"],
)
def test_a_refused_refresh_is_auth_expired_in_blueskys_words(
    api: respx.MockRouter, door: RecordingDoor, status: int, refusal: dict[str, str]
) -> None:
    api.routes["refresh"].respond(status, json=refusal)
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(AuthExpired) as raised:
        AUTHENTICATOR.refresh(ACCOUNT, TOKENS, variables=VARIABLES, http=http)
    assert f"{refusal['error']}: {refusal['message']}" in str(raised.value)
    assert raised.value.status_code == status
    _assert_no_secret(raised.value)


@pytest.mark.parametrize(
    ("status", "refusal"),
    [
        (401, _error("AuthenticationRequired", "Invalid identifier or password")),
        (400, _error("AuthFactorTokenRequired", "A sign in code has been sent to your email")),
        (400, _error("AccountTakedown", "Account has been taken down")),
    ],
    ids=["wrong-password", "email-code", "takedown"],
)
def test_a_refused_login_is_auth_expired_without_the_password(
    api: respx.MockRouter, door: RecordingDoor, status: int, refusal: dict[str, str]
) -> None:
    api.routes["login"].respond(status, json=refusal)
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(AuthExpired) as raised:
        AUTHENTICATOR.login(ACCOUNT, variables=VARIABLES, http=http)
    assert refusal["message"] in str(raised.value)
    _assert_no_secret(raised.value)


def test_a_session_for_an_account_not_active_is_auth_expired(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["login"].respond(200, json=_session() | {"status": "deactivated"})
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(AuthExpired, match="'deactivated'"):
        AUTHENTICATOR.login(ACCOUNT, variables=VARIABLES, http=http)


def test_a_malformed_login_request_is_rejected_not_a_dead_session(
    api: respx.MockRouter, door: RecordingDoor
) -> None:
    api.routes["login"].respond(400, json=_error("InvalidRequest", "Input/identifier is required"))
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(Rejected, match="Input/identifier is required") as raised:
        AUTHENTICATOR.login(ACCOUNT, variables=VARIABLES, http=http)
    assert not isinstance(raised.value, AuthExpired)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (lambda request: httpx.Response(503, text="<html><title>Down</title></html>"), Transient),
        (lambda request: httpx.Response(500, json=_error("InternalServerError", "x")), Transient),
        (lambda request: httpx.Response(502, text="Bad Gateway"), Transient),
        (lambda request: httpx.Response(429, headers={"Retry-After": "3"}), RateLimited),
        (lambda request: httpx.Response(200, text="<html>proxy</html>"), Transient),
        (lambda request: httpx.Response(200, json={"did": DID}), Transient),
    ],
    ids=["503", "500", "502", "429", "not-json", "no-access-token"],
)
def test_a_refresh_failing_on_the_way_is_retryable_never_a_dead_token(
    api: respx.MockRouter,
    door: RecordingDoor,
    answer: Callable[[httpx.Request], httpx.Response],
    expected: type[SocialError],
) -> None:
    api.routes["refresh"].mock(side_effect=answer)
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(SocialError) as raised:
        AUTHENTICATOR.refresh(ACCOUNT, TOKENS, variables=VARIABLES, http=http)
    assert type(raised.value) is expected
    assert raised.value.retryable
    assert not isinstance(raised.value, AuthExpired)
    _assert_no_secret(raised.value)


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout])
def test_a_transport_failure_of_a_session_request_is_transient(
    api: respx.MockRouter, door: RecordingDoor, error: type[httpx.TransportError]
) -> None:
    api.routes["refresh"].mock(side_effect=error("injected"))
    api.routes["login"].mock(side_effect=error("injected"))
    http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
    with pytest.raises(Transient):
        AUTHENTICATOR.refresh(ACCOUNT, TOKENS, variables=VARIABLES, http=http)
    with pytest.raises(Transient):
        AUTHENTICATOR.login(ACCOUNT, variables=VARIABLES, http=http)


def test_tokens_without_a_refresh_token_are_auth_expired_without_a_request(
    door: RecordingDoor,
) -> None:
    with respx.mock() as router:
        http = AUTHENTICATOR.client(ACCOUNT, door=door, timeout=2)
        bare = TokenSet(access_token=OLD_ACCESS, subject=DID)
        with pytest.raises(AuthExpired, match="no refresh token"):
            AUTHENTICATOR.refresh(ACCOUNT, bare, variables=VARIABLES, http=http)
        assert not router.calls


# -- search ---------------------------------------------------------------------------------


def _view(
    rkey: str,
    *,
    did: str = OTHER,
    handle: str = "alice.test",
    text: str = "a dagster question",
    created: datetime = NOW - timedelta(hours=1),
    indexed: datetime | None = None,
    reply_to: str | None = None,
) -> dict[str, Any]:
    """A `postView` (lexicon app.bsky.feed.defs#postView) as searchPosts returns it."""
    record: dict[str, Any] = {"$type": POST, "text": text, "createdAt": _iso(created)}
    record["langs"] = ["en"]
    if reply_to:
        ref = {"uri": reply_to, "cid": "bafyreiparent"}
        record["reply"] = {"root": ref, "parent": ref}
    return {
        "uri": f"at://{did}/{POST}/{rkey}",
        "cid": f"bafyrei{rkey}",
        "author": {"did": did, "handle": handle},
        "record": record,
        "indexedAt": _iso(indexed or created),
    }


def _search_route(api: respx.MockRouter, pages: list[dict[str, Any]]) -> respx.Route:
    answers = iter(pages)
    return api.get(_xrpc("app.bsky.feed.searchPosts")).mock(
        side_effect=lambda request: httpx.Response(200, json=next(answers))
    )


def test_search_pages_by_cursor_with_the_window_and_skips_our_own_posts(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    since, until = NOW - timedelta(hours=24), NOW - timedelta(minutes=1)
    search = _search_route(
        api,
        [
            {
                "posts": [
                    _view("3p1", text="first"),
                    _view("3own", did=DID, handle=HANDLE, text="our own reply"),
                    _view("3p2", reply_to=f"at://{DID}/{POST}/3root"),
                ],
                "cursor": "page-2",
            },
            {"posts": [_view("3p3", handle="handle.invalid")]},
        ],
    )
    result = bsky.search("dagster", limit=10, since=since, until=until)
    assert [post.id for post in result.posts] == [
        f"at://{OTHER}/{POST}/3p1",
        f"at://{OTHER}/{POST}/3p2",
        f"at://{OTHER}/{POST}/3p3",
    ]
    assert (result.pages, result.own_skipped, result.complete) == (2, 1, True)
    first, second, third = result.posts
    assert (first.author_id, first.author_handle, first.text) == (OTHER, "alice.test", "first")
    assert first.url == "https://bsky.app/profile/alice.test/post/3p1"
    assert first.language == "en" and first.platform == "bluesky"
    assert second.in_reply_to_id == f"at://{DID}/{POST}/3root"
    assert third.url == f"https://bsky.app/profile/{OTHER}/post/3p3"  # no valid handle: the DID
    params = [dict(call.request.url.params) for call in search.calls]
    assert params[0] == {
        "q": "dagster",
        "sort": "latest",
        "since": "2026-11-30T12:00:00.000000Z",
        "until": "2026-12-01T11:59:00.000000Z",
        "limit": "10",
    }
    assert params[1] == params[0] | {"cursor": "page-2"}
    assert all(_bearer(call.request) == OLD_ACCESS for call in search.calls)  # authenticated


def test_a_search_stopped_by_its_limit_says_how_much_it_left(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    search = _search_route(
        api, [{"posts": [_view("3a"), _view("3b"), _view("3c")], "cursor": "more"}]
    )
    result = bsky.search("dagster", limit=2, since=NOW - timedelta(days=1))
    assert [post.id.rsplit("/", 1)[-1] for post in result.posts] == ["3a", "3b"]
    assert not result.complete
    assert result.stopped_by == "search_limit=2"
    assert (result.not_examined, result.more_beyond) == (1, True)
    assert search.call_count == 1  # no page fetched past the limit


def test_own_posts_never_fill_the_limit(api: respx.MockRouter, bsky: BlueskyPlatform) -> None:
    own = [_view(f"3own{i}", did=DID, handle=HANDLE) for i in range(2)]
    _search_route(
        api,
        [
            {"posts": [*own, _view("3a")], "cursor": "more"},
            {"posts": [_view("3b")]},
        ],
    )
    result = bsky.search("dagster", limit=2, since=NOW - timedelta(days=1))
    assert [post.id.rsplit("/", 1)[-1] for post in result.posts] == ["3a", "3b"]
    assert result.own_skipped == 2 and result.complete


def test_search_windows_by_sort_at_and_stops_after_its_page_cap(
    api: respx.MockRouter, session: MemorySession, door: RecordingDoor
) -> None:
    since, until = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    _search_route(
        api,
        [
            {
                "posts": [
                    # createdAt in the future: Bluesky sorts it when it was indexed (inside).
                    _view(
                        "3in", created=NOW + timedelta(days=9), indexed=since + timedelta(minutes=1)
                    ),
                    _view("3late", created=until),  # `until` is exclusive
                ],
                "cursor": "more",
            },
            {"posts": [_view("3in2", created=since)], "cursor": "more"},  # `since` inclusive
        ],
    )
    with BlueskyPlatform(ACCOUNT, session=session, door=door, timeout=2, max_pages=2) as bsky:
        result = bsky.search("dagster", limit=10, since=since, until=until)
    assert [post.id.rsplit("/", 1)[-1] for post in result.posts] == ["3in", "3in2"]
    assert result.posts[0].created_at == since + timedelta(minutes=1)
    assert (result.complete, result.stopped_by, result.more_beyond) == (False, "2 pages", True)


def test_an_empty_search_is_complete(api: respx.MockRouter, bsky: BlueskyPlatform) -> None:
    _search_route(api, [{"posts": [], "cursor": "stale"}])
    result = bsky.search("nothing", limit=5, since=NOW - timedelta(days=1))
    assert result.posts == [] and result.complete and result.pages == 1


def test_a_bad_query_is_rejected_in_blueskys_words(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    api.get(_xrpc("app.bsky.feed.searchPosts")).respond(
        400, json=_error("BadQueryString", "Error: invalid query")
    )
    with pytest.raises(Rejected, match="BadQueryString: Error: invalid query"):
        bsky.search("((", limit=5, since=NOW - timedelta(days=1))


def test_search_reads_only_search(bsky: BlueskyPlatform) -> None:
    with pytest.raises(ConfigError, match="reads search"):
        bsky.search("x", limit=5, since=NOW, source=Source.MENTIONS)


def test_with_an_appview_search_goes_there_with_a_service_token(
    api: respx.MockRouter, session: MemorySession, door: RecordingDoor
) -> None:
    tokens = iter(["service-1", "service-2"])
    auth = api.get(_xrpc("com.atproto.server.getServiceAuth")).mock(
        side_effect=lambda request: httpx.Response(200, json={"token": next(tokens)})
    )
    pages = iter([{"posts": [_view("3a")], "cursor": "more"}, {"posts": [_view("3b")]}])
    search = api.get(_xrpc("app.bsky.feed.searchPosts", APPVIEW)).mock(
        side_effect=lambda request: httpx.Response(200, json=next(pages))
    )
    with connect(WITH_APPVIEW, variables=VARIABLES, door=door, timeout=2, session=session) as bsky:
        result = bsky.search("dagster", limit=10, since=NOW - timedelta(days=1))
    assert len(result.posts) == 2
    assert [dict(call.request.url.params) for call in auth.calls] == [
        {"aud": "did:web:appview.test", "lxm": "app.bsky.feed.searchPosts"}
    ] * 2
    assert all(_bearer(call.request) == OLD_ACCESS for call in auth.calls)  # asked at the PDS
    assert [_bearer(call.request) for call in search.calls] == ["service-1", "service-2"]
    assert [p.endpoint for p in door.passages] == ["read", "appview", "read", "appview"]


def test_an_appview_refusing_its_token_is_rejected_never_auth_expired(
    api: respx.MockRouter, session: MemorySession, door: RecordingDoor
) -> None:
    api.get(_xrpc("com.atproto.server.getServiceAuth")).respond(200, json={"token": "svc"})
    api.get(_xrpc("app.bsky.feed.searchPosts", APPVIEW)).respond(
        401, json=_error("BadJwtAudience", "jwt audience does not match service did")
    )
    with (
        connect(WITH_APPVIEW, variables=VARIABLES, door=door, timeout=2, session=session) as bsky,
        pytest.raises(Rejected) as raised,
    ):
        bsky.search("dagster", limit=10, since=NOW - timedelta(days=1))
    assert not isinstance(raised.value, AuthExpired)
    assert "BadJwtAudience" in str(raised.value) and "did:web:appview.test" in str(raised.value)
    assert session.refreshes == 0


# -- record keys ----------------------------------------------------------------------------


def test_a_delivery_has_one_valid_tid_record_key_everywhere() -> None:
    key = tid.tid_for(KEY, PLANNED)
    assert TID_RE.match(key)
    assert key == tid.tid_for(KEY, PLANNED)  # the same delivery: the same key
    # The plan time's seconds only: a store keeping milliseconds, or none, or a naive UTC
    # time, gives the same key.
    assert key == tid.tid_for(KEY, PLANNED.replace(microsecond=654000))
    assert key == tid.tid_for(KEY, PLANNED.replace(microsecond=0, tzinfo=None))
    assert key != tid.tid_for(KEY[:-1] + "f", PLANNED)  # another delivery: another key
    assert key != tid.tid_for(KEY, PLANNED + timedelta(seconds=1))
    made = tid.timestamp(key)
    assert made.replace(microsecond=0) == PLANNED.replace(microsecond=0)  # the planned second
    assert tid.decode(key) >> 63 == 0  # the top bit is 0


def test_tids_encode_as_the_spec_writes_them() -> None:
    assert tid.encode(0) == "2222222222222"
    assert tid.decode("3jzfcijpj2z2a") == int("3jzfcijpj2z2a".translate(_BASE32), 32)
    for valid in ("3jzfcijpj2z2a", "7777777777777", "3zzzzzzzzzzzz", "2222222222222"):
        assert tid.is_tid(valid)
    for invalid in ("3jzfcijpj2z21", "0000000000000", "3JZFCIJPJ2Z2A", "3jzfcijpj2z2aa", "222"):
        assert not tid.is_tid(invalid)
    for high_bit in ("zzzzzzzzzzzzz", "kjzfcijpj2z2a"):
        assert not tid.is_tid(high_bit)
    value = tid.decode(tid.make(1_700_000_000_123_456, 1023))
    assert (value >> 10, value & 1023) == (1_700_000_000_123_456, 1023)


_BASE32 = str.maketrans("234567abcdefghijklmnopqrstuvwxyz", "0123456789abcdefghijklmnopqrstuv")


# -- creates --------------------------------------------------------------------------------


def _create_route(api: respx.MockRouter) -> respx.Route:
    """createRecord answering as the PDS does (bsky-docs posts.md), under the key sent."""
    return api.post(_xrpc("com.atproto.repo.createRecord")).mock(
        side_effect=lambda request: httpx.Response(
            200,
            json={
                "uri": f"at://{DID}/{POST}/{_body(request)['rkey']}",
                "cid": "bafyreibjifzpqj6o6wcq3hejh7y4z4z2vmiklkvykc57tw3pcbx3kxifpm",
                "commit": {"cid": "bafyreicommit", "rev": "3kcommit"},
                "validationStatus": "valid",
            },
        )
    )


def test_a_create_is_a_record_under_the_deliverys_tid(
    api: respx.MockRouter, bsky: BlueskyPlatform, door: RecordingDoor
) -> None:
    create = _create_route(api)
    post = CreatePost(text="hello", language="en", planned_at=PLANNED)
    published = bsky.create_post(post, idempotency_key=KEY)
    again = bsky.create_post(post, idempotency_key=KEY)  # a second attempt: the same key
    other = bsky.create_post(post, idempotency_key=KEY[:-1] + "0")
    bodies = [_body(call.request) for call in create.calls]
    rkey = tid.tid_for(KEY, PLANNED)
    assert bodies[0] == {
        "repo": DID,
        "collection": POST,
        "rkey": rkey,
        "record": {
            "$type": POST,
            "text": "hello",
            "createdAt": "2026-12-01T12:00:00.000000Z",
            "langs": ["en"],
        },
    }
    assert bodies[1]["rkey"] == rkey and bodies[2]["rkey"] != rkey
    assert TID_RE.match(bodies[2]["rkey"])
    assert published.remote_id == f"at://{DID}/{POST}/{rkey}" == again.remote_id
    assert published.url == f"https://bsky.app/profile/{HANDLE}/post/{rkey}"
    assert other.remote_id != published.remote_id
    assert bsky.keyed_elsewhere == []
    assert str(create.calls[0].request.url).startswith(PDS)
    assert {p.endpoint for p in door.passages} == {"write"}


def test_a_post_the_pds_keyed_itself_is_published_and_noted(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    theirs = f"at://{DID}/{POST}/3kpdschosekey"
    api.post(_xrpc("com.atproto.repo.createRecord")).respond(
        200, json={"uri": theirs, "cid": "bafyreitheirs"}
    )
    published = bsky.create_post(CreatePost(text="hi", planned_at=PLANNED), idempotency_key=KEY)
    assert published.remote_id == theirs  # it is out
    assert bsky.keyed_elsewhere == [theirs]  # and reconciliation cannot rely on our key


def test_a_create_without_a_plan_time_is_refused_before_anything_is_sent(
    api: respx.MockRouter, bsky: BlueskyPlatform, door: RecordingDoor
) -> None:
    with pytest.raises(Rejected, match="planned_at"):
        bsky.create_post(CreatePost(text="hello"), idempotency_key=KEY)
    assert door.passages == []


def test_facets_point_at_utf8_bytes_past_emoji_and_accents(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    create = _create_route(api)
    resolve = api.get(_xrpc("com.atproto.identity.resolveHandle")).mock(
        side_effect=lambda request: (
            httpx.Response(200, json={"did": OTHER})
            if request.url.params["handle"] == "alice.test"
            else httpx.Response(400, json=_error("InvalidRequest", "Unable to resolve handle"))
        )
    )
    text = "Grüße 👋🏽 @alice.test: siehe https://example.com/docs?x=1, #Dagstér! @nobody.test"
    bsky.create_post(CreatePost(text=text, planned_at=PLANNED), idempotency_key=KEY)
    record = _body(create.calls.last.request)["record"]
    data = text.encode("utf-8")

    def at(part: str) -> dict[str, int]:
        start = data.index(part.encode("utf-8"))
        return {"byteStart": start, "byteEnd": start + len(part.encode("utf-8"))}

    assert record["facets"] == [
        {
            "index": at("@alice.test"),
            "features": [{"$type": "app.bsky.richtext.facet#mention", "did": OTHER}],
        },
        {
            "index": at("https://example.com/docs?x=1"),
            "features": [
                {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/docs?x=1"}
            ],
        },
        {
            "index": at("#Dagstér"),
            "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Dagstér"}],
        },
    ]  # @nobody.test resolves to no one: plain text
    # Bytes, not characters: the emoji and the accents come before.
    assert record["facets"][0]["index"]["byteStart"] != text.index("@alice.test")
    assert [call.request.url.params["handle"] for call in resolve.calls] == [
        "alice.test",
        "nobody.test",
    ]


def test_an_expired_token_on_a_handle_lookup_is_not_taken_for_an_unknown_handle(
    api: respx.MockRouter, bsky: BlueskyPlatform, session: MemorySession
) -> None:
    create = _create_route(api)
    api.get(_xrpc("com.atproto.identity.resolveHandle")).respond(400, json=EXPIRED)
    with pytest.raises(AuthExpired):
        bsky.create_post(CreatePost(text="hi @alice.test", planned_at=PLANNED), idempotency_key=KEY)
    assert session.refreshes == 1
    assert create.call_count == 0


def test_a_failing_handle_lookup_fails_the_create_before_it_is_sent(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    create = _create_route(api)
    api.get(_xrpc("com.atproto.identity.resolveHandle")).respond(503, text="busy")
    with pytest.raises(Transient):
        bsky.create_post(CreatePost(text="hi @alice.test", planned_at=PLANNED), idempotency_key=KEY)
    assert create.call_count == 0


def _record_answer(uri: str, cid: str, value: dict[str, Any]) -> dict[str, Any]:
    """getRecord's answer (lexicon com.atproto.repo.getRecord)."""
    return {"uri": uri, "cid": cid, "value": value}


def test_a_reply_to_a_reply_carries_its_root_and_its_parent(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    create = _create_route(api)
    root = {"uri": f"at://{DID}/{POST}/3root", "cid": "bafyreiroot"}
    parent_uri = f"at://{OTHER}/{POST}/3parent"
    get = api.get(_xrpc("com.atproto.repo.getRecord")).respond(
        200,
        json=_record_answer(
            parent_uri,
            "bafyreiparent",
            {
                "$type": POST,
                "text": "a question",
                "createdAt": _iso(NOW),
                "reply": {"root": root, "parent": root},
            },
        ),
    )
    reply = CreatePost(text="an answer", in_reply_to_id=parent_uri, planned_at=PLANNED)
    bsky.create_post(reply, idempotency_key=KEY)
    assert dict(get.calls.last.request.url.params) == {
        "repo": OTHER,
        "collection": POST,
        "rkey": "3parent",
    }
    assert _body(create.calls.last.request)["record"]["reply"] == {
        "root": root,
        "parent": {"uri": parent_uri, "cid": "bafyreiparent"},
    }


def test_a_reply_to_a_top_level_post_has_it_as_root_and_parent(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    create = _create_route(api)
    parent_uri = f"at://{OTHER}/{POST}/3top"
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(
        200,
        json=_record_answer(
            parent_uri, "bafyreitop", {"$type": POST, "text": "q", "createdAt": _iso(NOW)}
        ),
    )
    bsky.create_post(
        CreatePost(text="a", in_reply_to_id=parent_uri, planned_at=PLANNED), idempotency_key=KEY
    )
    ref = {"uri": parent_uri, "cid": "bafyreitop"}
    assert _body(create.calls.last.request)["record"]["reply"] == {"root": ref, "parent": ref}


@pytest.mark.parametrize(
    "missing",
    [
        _error("RecordNotFound", f"Could not locate record: at://{OTHER}/{POST}/3gone"),
        _error("InvalidRequest", f"Could not locate record: at://{OTHER}/{POST}/3gone"),
    ],
    ids=["record-not-found", "older-pds"],
)
def test_a_reply_to_a_post_that_is_gone_is_rejected_and_nothing_created(
    api: respx.MockRouter, bsky: BlueskyPlatform, missing: dict[str, str]
) -> None:
    create = _create_route(api)
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(400, json=missing)
    reply = CreatePost(text="a", in_reply_to_id=f"at://{OTHER}/{POST}/3gone", planned_at=PLANNED)
    with pytest.raises(Rejected, match="Could not locate record"):
        bsky.create_post(reply, idempotency_key=KEY)
    assert create.call_count == 0


# -- media ----------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _blob(link: str = "bafkreibabalobzn6cd366ukcsjycp4yymjymgfxcv6xczmlgpemzkz3cfa") -> dict:
    """uploadBlob's answer (bsky-docs posts.md)."""
    return {"blob": {"$type": "blob", "ref": {"$link": link}, "mimeType": "image/png", "size": 72}}


def test_an_image_is_uploaded_raw_and_embedded_with_alt_text_and_aspect_ratio(
    api: respx.MockRouter, bsky: BlueskyPlatform, door: RecordingDoor
) -> None:
    upload = api.post(_xrpc("com.atproto.repo.uploadBlob")).respond(200, json=_blob())
    create = _create_route(api)
    media = MediaUpload(
        data=PNG, mime_type="image/png", alt_text="A chart: runs, per day", width=1280, height=760
    )
    ref = bsky.upload_media(media)
    request = upload.calls.last.request
    assert request.content == PNG
    assert request.headers["Content-Type"] == "image/png"
    assert door.passages[-1].endpoint == "media"
    assert "," not in ref.id and ":" not in ref.id  # the ledger joins ids as r<rev>:id,id
    bsky.create_post(
        CreatePost(text="look", media_ids=(ref.id, ref.id), planned_at=PLANNED), idempotency_key=KEY
    )
    image = {
        "alt": "A chart: runs, per day",
        "image": _blob()["blob"],
        "aspectRatio": {"width": 1280, "height": 760},
    }
    assert _body(create.calls.last.request)["record"]["embed"] == {
        "$type": "app.bsky.embed.images",
        "images": [image, image],
    }


def test_an_image_of_unknown_size_has_no_aspect_ratio() -> None:
    ref = BlobRef(link="bafkrei1", mime_type="image/jpeg", size=10, alt="a cat")
    assert "aspectRatio" not in ref.image()
    assert decode_media_id(encode_media_id(ref)) == ref


def test_media_ids_carry_everything_and_refuse_what_is_not_theirs() -> None:
    ref = BlobRef(
        link="bafkrei2", mime_type="image/webp", size=999, alt="ü, é: «ok»", width=3, height=4
    )
    media_id = encode_media_id(ref)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", media_id)
    assert decode_media_id(media_id) == ref
    for stranger in ("109", "not base64!", base64.urlsafe_b64encode(b'{"x":1}').decode()):
        with pytest.raises(ValueError, match="not a Bluesky media id"):
            decode_media_id(stranger)


@pytest.mark.parametrize(
    ("media", "said"),
    [
        (
            MediaUpload(data=b"\x00" * 1_000_001, mime_type="image/jpeg", alt_text="big"),
            "image is 1,000,001 bytes; Bluesky takes images of at most 1,000,000 bytes",
        ),
        (MediaUpload(data=PNG, mime_type="image/png", alt_text="  "), "no alt text"),
        (MediaUpload(data=PNG, mime_type="image/gif", alt_text="gif"), "image/gif"),
    ],
    ids=["too-large", "no-alt", "type"],
)
def test_an_image_bluesky_would_refuse_is_refused_before_it_is_sent(
    bsky: BlueskyPlatform, door: RecordingDoor, media: MediaUpload, said: str
) -> None:
    with pytest.raises(Rejected) as raised:
        bsky.upload_media(media)
    assert said in str(raised.value)
    assert door.passages == []


def test_an_image_of_exactly_the_limit_is_sent(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    upload = api.post(_xrpc("com.atproto.repo.uploadBlob")).respond(200, json=_blob())
    bsky.upload_media(MediaUpload(data=b"\x00" * 1_000_000, mime_type="image/jpeg", alt_text="a"))
    assert upload.call_count == 1


def test_an_upload_answer_without_a_blob_is_transient(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    api.post(_xrpc("com.atproto.repo.uploadBlob")).respond(200, json={"cid": "bafy-legacy"})
    with pytest.raises(Transient, match="without a blob"):
        bsky.upload_media(MediaUpload(data=PNG, mime_type="image/png", alt_text="a"))


# -- reconciliation -------------------------------------------------------------------------


def _delivery(**fields: Any) -> Delivery:
    return Delivery(
        delivery_id=KEY,
        kind=fields.pop("kind", DeliveryKind.PUBLISH),
        subject=fields.pop("subject", "post-1/bluesky"),
        text=fields.pop("text", "hello"),
        planned_at=PLANNED,
        **fields,
    )


def _own(rkey: str, **value: Any) -> dict[str, Any]:
    """A listRecords item (lexicon com.atproto.repo.listRecords#record)."""
    return {
        "uri": f"at://{DID}/{POST}/{rkey}",
        "cid": f"bafyrei{rkey}",
        "value": {"$type": POST, "createdAt": _iso(NOW)} | value,
    }


NOT_FOUND = _error("RecordNotFound", "Could not locate record")


def test_a_500_on_a_create_is_unknown_and_the_record_under_its_key_settles_it(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    # platforms.md §2.5: a repeated rkey is answered 500 by the reference PDS.
    api.post(_xrpc("com.atproto.repo.createRecord")).respond(
        500, json=_error("InternalServerError", "Internal Server Error")
    )
    with pytest.raises(OutcomeUnknown) as raised:
        bsky.create_post(CreatePost(text="hello", planned_at=PLANNED), idempotency_key=KEY)
    assert "InternalServerError" in str(raised.value)
    rkey = tid.tid_for(KEY, PLANNED)
    uri = f"at://{DID}/{POST}/{rkey}"
    get = api.get(_xrpc("com.atproto.repo.getRecord")).respond(
        200, json=_record_answer(uri, "bafyreiours", {"text": "hello", "createdAt": _iso(NOW)})
    )
    found = bsky.find_delivery(_delivery())
    assert found is not None
    assert (found.remote_id, found.created_at) == (uri, NOW)
    assert found.url == f"https://bsky.app/profile/{HANDLE}/post/{rkey}"
    assert dict(get.calls.last.request.url.params) == {
        "repo": DID,
        "collection": POST,
        "rkey": rkey,
    }


def test_a_reply_the_pds_keyed_its_own_way_is_found_by_list_records(
    api: respx.MockRouter, bsky: BlueskyPlatform, door: RecordingDoor
) -> None:
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(400, json=NOT_FOUND)
    subject = f"at://{OTHER}/{POST}/3asked"
    later = PLANNED + timedelta(minutes=5)
    ref = {"uri": subject, "cid": "bafyreiasked"}
    pages = iter(
        [
            {
                "records": [
                    _own(_rkey(later + timedelta(minutes=3)), text="something else"),
                    _own(
                        _rkey(later + timedelta(minutes=2)),
                        text="a",
                        reply={
                            "root": ref,
                            "parent": {"uri": f"at://{OTHER}/{POST}/3else", "cid": "x"},
                        },
                    ),
                ],
                "cursor": "next",
            },
            {
                "records": [
                    _own(
                        _rkey(later + timedelta(minutes=1)),
                        text="taken",
                        reply={"root": ref, "parent": ref},
                    ),
                    _own(_rkey(later), text="ours", reply={"root": ref, "parent": ref}),
                ],
                "cursor": "more",
            },
        ]
    )
    listed = api.get(_xrpc("com.atproto.repo.listRecords")).mock(
        side_effect=lambda request: httpx.Response(200, json=next(pages))
    )
    taken = f"at://{DID}/{POST}/{_rkey(later + timedelta(minutes=1))}"
    found = bsky.find_delivery(
        _delivery(kind=DeliveryKind.REPLY, subject=subject, taken_ids=frozenset({taken}))
    )
    assert found is not None and found.remote_id == f"at://{DID}/{POST}/{_rkey(later)}"
    params = [dict(call.request.url.params) for call in listed.calls]
    assert params == [
        {"repo": DID, "collection": POST, "limit": "100"},
        {"repo": DID, "collection": POST, "limit": "100", "cursor": "next"},
    ]
    assert [p.endpoint for p in door.passages] == ["read", "read", "read"]


def test_a_publish_is_found_by_its_text_and_exactly_its_blobs(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(400, json=NOT_FOUND)
    media_id = encode_media_id(BlobRef(link="bafkreiours", mime_type="image/png", size=9, alt="a"))

    def embed(*links: str) -> dict[str, Any]:
        return {
            "$type": "app.bsky.embed.images",
            "images": [
                {"alt": "a", "image": {"$type": "blob", "ref": {"$link": link}}} for link in links
            ],
        }

    later = PLANNED + timedelta(minutes=1)
    api.get(_xrpc("com.atproto.repo.listRecords")).respond(
        200,
        json={
            "records": [
                _own(_rkey(later, 4), text="hello "),  # the same text without the image
                _own(_rkey(later, 3), text="hello", embed=embed("bafkreiours", "bafkreimore")),
                _own(_rkey(later, 2), text="hello", embed=embed("bafkreiours")),
            ]
        },
    )
    found = bsky.find_delivery(_delivery(staged_id=stage_media(1, [media_id])))
    assert found is not None and found.remote_id.endswith(_rkey(later, 2))


def test_list_records_stops_at_the_plan_and_calls_a_miss_a_miss(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    # An older reference PDS says a missing record so (its getRecord.ts).
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(
        400, json=_error("InvalidRequest", f"Could not locate record: at://{DID}/{POST}/3x")
    )
    listed = api.get(_xrpc("com.atproto.repo.listRecords")).respond(
        200,
        json={
            "records": [
                _own(_rkey(PLANNED + timedelta(minutes=1)), text="newer, not ours"),
                _own(_rkey(PLANNED - timedelta(minutes=2)), text="hello"),  # before the plan
            ],
            "cursor": "older",
        },
    )
    assert bsky.find_delivery(_delivery()) is None
    assert listed.call_count == 1  # nothing older was asked for


def test_reconciliation_past_its_limit_is_inconclusive(
    api: respx.MockRouter, bsky: BlueskyPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bluesky_module, "RECONCILE_LIMIT", 3)
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(400, json=NOT_FOUND)
    later = PLANNED + timedelta(minutes=10)
    api.get(_xrpc("com.atproto.repo.listRecords")).respond(
        200,
        json={
            "records": [_own(_rkey(later, n), text=f"other {n}") for n in range(3)],
            "cursor": "more",
        },
    )
    with pytest.raises(Inconclusive, match="newest 3 own posts"):
        bsky.find_delivery(_delivery())


def test_a_failing_record_lookup_is_never_taken_for_a_miss(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(502, text="<title>Bad Gateway</title>")
    listed = api.get(_xrpc("com.atproto.repo.listRecords")).respond(200, json={"records": []})
    with pytest.raises(Transient):
        bsky.find_delivery(_delivery())
    assert listed.call_count == 0


def test_staged_ids_of_another_kind_make_a_publish_inconclusive(
    api: respx.MockRouter, bsky: BlueskyPlatform
) -> None:
    api.get(_xrpc("com.atproto.repo.getRecord")).respond(400, json=NOT_FOUND)
    with pytest.raises(Inconclusive, match="staged uploads"):
        bsky.find_delivery(_delivery(staged_id=stage_media(1, ["109"])))


# -- error classes and the door -------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "expected", "said"),
    [
        (
            lambda request: httpx.Response(
                400,
                json=_error(
                    "InvalidRequest",
                    'Invalid record key for app.bsky.feed.post: Invalid TID string (got "x") at $',
                ),
            ),
            Rejected,
            "Invalid record key",
        ),
        (
            lambda request: httpx.Response(
                500, json=_error("InternalServerError", "Internal Server Error")
            ),
            OutcomeUnknown,
            "may have been processed",
        ),
        (
            lambda request: httpx.Response(
                400, json=_error("InvalidRequest", "There is already a value at key: x")
            ),
            OutcomeUnknown,
            "record key is taken",
        ),
        (lambda request: httpx.Response(409, json=_error("Conflict", "x")), OutcomeUnknown, ""),
        (lambda request: httpx.Response(502, text="<html>bad gateway</html>"), OutcomeUnknown, ""),
        (lambda request: httpx.Response(503, text="down"), Transient, ""),
        (
            lambda request: httpx.Response(413, json=_error("PayloadTooLarge", "big")),
            Rejected,
            "big",
        ),
        (
            lambda request: httpx.Response(
                401, json=_error("AuthMissing", "Authentication Required")
            ),
            AuthExpired,
            "AuthMissing",
        ),
        (
            lambda request: httpx.Response(200, text="<html>proxy</html>"),
            OutcomeUnknown,
            "not a JSON",
        ),
        (lambda request: httpx.Response(200, json={"cid": "bafy"}), OutcomeUnknown, "at:// URI"),
        (
            lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=request)),
            OutcomeUnknown,
            "",
        ),
        (
            lambda request: (_ for _ in ()).throw(httpx.ConnectError("refused", request=request)),
            Transient,
            "",
        ),
    ],
    ids=[
        "bad-rkey",
        "500",
        "key-taken",
        "409",
        "502",
        "503",
        "413",
        "401",
        "not-json",
        "no-uri",
        "read-timeout",
        "connect-error",
    ],
)
def test_every_answer_to_a_create_maps_to_its_error_class(
    api: respx.MockRouter,
    bsky: BlueskyPlatform,
    answer: Callable[[httpx.Request], httpx.Response],
    expected: type[SocialError],
    said: str,
) -> None:
    api.post(_xrpc("com.atproto.repo.createRecord")).mock(side_effect=answer)
    with pytest.raises(SocialError) as raised:
        bsky.create_post(CreatePost(text="hello", planned_at=PLANNED), idempotency_key=KEY)
    assert type(raised.value) is expected
    assert said in str(raised.value)
    _assert_no_secret(raised.value)


@pytest.mark.parametrize("retry_after", [True, False], ids=["retry-after", "ratelimit-reset"])
def test_a_429_is_rate_limited_with_its_wait(
    api: respx.MockRouter, bsky: BlueskyPlatform, retry_after: bool
) -> None:
    # platforms.md §2.3: Retry-After (seconds) on a 429, RateLimit-Reset in epoch seconds.
    reset = str(int((datetime.now(UTC) + timedelta(seconds=60)).timestamp()))
    headers = {"RateLimit-Reset": reset} | ({"Retry-After": "7"} if retry_after else {})
    wait = 7.0 if retry_after else 60.0
    api.post(_xrpc("com.atproto.repo.createRecord")).respond(
        429, headers=headers, json=_error("RateLimitExceeded", "Rate Limit Exceeded")
    )
    with pytest.raises(RateLimited, match="RateLimitExceeded") as raised:
        bsky.create_post(CreatePost(text="hello", planned_at=PLANNED), idempotency_key=KEY)
    assert raised.value.retry_after is not None
    assert wait - 2 <= raised.value.retry_after <= wait


def test_rate_limit_headers_reach_the_door(
    api: respx.MockRouter, bsky: BlueskyPlatform, door: RecordingDoor
) -> None:
    # platforms.md §2.3: RateLimit-Limit/Remaining/Reset (epoch seconds) and -Policy.
    api.routes["me"].respond(
        200,
        json={"handle": HANDLE, "did": DID},
        headers={
            "RateLimit-Limit": "3000",
            "RateLimit-Remaining": "2990",
            "RateLimit-Reset": "1796126400",
            "RateLimit-Policy": "3000;w=300",
        },
    )
    bsky.whoami()
    assert door.observed == [
        ("read", RateLimitInfo(3000, 2990, datetime.fromtimestamp(1796126400, UTC)))
    ]


def test_the_policy_has_a_bucket_for_every_endpoint_class_with_its_sources() -> None:
    assert POLICY.buckets_for("write") == ["pds", "repo_write"]
    assert [(r.limit, r.seconds) for r in POLICY.buckets["repo_write"]] == [
        (1666, 3600),
        (11666, 86400),
    ]
    assert [(r.limit, r.seconds) for r in POLICY.buckets["pds"]] == [(3000, 300)]
    assert POLICY.buckets_for("login") == ["pds", "login"]
    assert [(r.limit, r.seconds) for r in POLICY.buckets["login"]] == [(30, 300), (300, 86400)]
    assert POLICY.buckets_for("auth") == ["pds", "refresh"]
    assert (POLICY.quota_per_hour, POLICY.quota_per_day) == (1666, 11666)
    for endpoint in ("read", "search", "media", "appview"):
        assert POLICY.buckets_for(endpoint), endpoint
    assert all(POLICY.buckets[name] for names in POLICY.endpoints.values() for name in names)


def test_the_spec_declares_everything_it_implements() -> None:
    assert SPEC.name == "bluesky"
    assert SPEC.capabilities == frozenset(Capability)
    assert SPEC.sources == (Source.SEARCH,)
    assert SPEC.authenticator is AUTHENTICATOR
    assert SPEC.account_model is BlueskyAccount
