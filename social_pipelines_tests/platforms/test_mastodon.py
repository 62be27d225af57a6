"""The Mastodon adapter's mapping of answers and failures, against respx-mocked HTTP."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import respx

from social_pipelines.errors import (
    AuthExpired,
    Inconclusive,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    SocialError,
    Transient,
)
from social_pipelines.models import CreatePost, Delivery, DeliveryKind, Published
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.platforms.mastodon import RECONCILE_LIMIT, MastodonPlatform
from social_pipelines_tests.doors import RecordingDoor

BASE = "https://social.example"
TOKEN = "tok-SECRET-5f3a9c"
STATUSES = "/api/v1/statuses"
SEARCH = "/api/v2/search"
POST = CreatePost(text="Thanks @alice!", in_reply_to_id="111")


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        # Who we are (search leaves our own posts out) and the instance's identity.
        router.get("/api/v1/accounts/verify_credentials").respond(
            200, json={"id": "109", "username": "brand", "acct": "brand"}
        )
        router.get("/api/v2/instance").respond(200, json={"domain": "social.example"})
        yield router


@pytest.fixture
def door() -> RecordingDoor:
    return RecordingDoor()


@pytest.fixture
def mastodon(api: respx.MockRouter, door: RecordingDoor) -> Iterator[MastodonPlatform]:
    with MastodonPlatform(BASE + "/", TOKEN, door=door, timeout=2) as platform:
        yield platform


def _create(mastodon: MastodonPlatform) -> Published:
    return mastodon.create_post(POST, idempotency_key="delivery-1")


def _search(mastodon: MastodonPlatform) -> object:
    return mastodon.search("dagster", limit=10, since=datetime(2025, 1, 1, tzinfo=UTC))


def _assert_no_token(error: BaseException) -> None:
    """Neither the error nor anything chained to it shows the token."""
    visited: set[int] = set()
    seen: BaseException | None = error
    while seen is not None and id(seen) not in visited:  # chains can loop
        visited.add(id(seen))
        for text in (str(seen), repr(seen), *map(str, seen.args)):
            assert TOKEN not in text
        if isinstance(seen, SocialError):
            assert TOKEN not in seen.message and TOKEN not in seen.detail
        seen = seen.__cause__ or seen.__context__


def test_create_sends_the_post_with_its_idempotency_key(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    route = api.post(STATUSES).respond(
        200,
        json={
            "id": "222",
            "url": f"{BASE}/@brand/222",
            "created_at": "2025-03-01T12:00:00.000Z",
        },
    )
    published = _create(mastodon)
    assert published == Published(
        remote_id="222",
        url=f"{BASE}/@brand/222",
        created_at=datetime(2025, 3, 1, 12, tzinfo=UTC),
    )
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "delivery-1"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {"status": "Thanks @alice!", "in_reply_to_id": "111"}


def test_401_is_auth_expired(api: respx.MockRouter, mastodon: MastodonPlatform) -> None:
    api.post(STATUSES).respond(401, json={"error": "The access token is invalid"})
    with pytest.raises(AuthExpired) as caught:
        _create(mastodon)
    assert caught.value.status_code == 401
    assert "The access token is invalid" in str(caught.value)
    _assert_no_token(caught.value)


@pytest.mark.parametrize("status", [403, 404, 410, 422])
def test_client_errors_are_rejected_with_the_platform_message(
    api: respx.MockRouter, mastodon: MastodonPlatform, status: int
) -> None:
    api.post(STATUSES).respond(
        status, json={"error": "Validation failed: Text character limit of 500 exceeded"}
    )
    with pytest.raises(Rejected) as caught:
        _create(mastodon)
    assert caught.value.status_code == status
    assert "Text character limit of 500 exceeded" in str(caught.value)
    _assert_no_token(caught.value)


def test_422_without_a_json_body_is_still_rejected(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.post(STATUSES).respond(422, text="<html>unprocessable</html>")
    with pytest.raises(Rejected, match="HTTP 422"):
        _create(mastodon)


def test_429_is_rate_limited_with_retry_after(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.post(STATUSES).respond(429, headers={"Retry-After": "37"}, json={"error": "Too many"})
    with pytest.raises(RateLimited) as caught:
        _create(mastodon)
    assert caught.value.retry_after == 37.0
    assert caught.value.status_code == 429
    _assert_no_token(caught.value)


def test_429_takes_mastodons_reset_header_and_reports_it(
    api: respx.MockRouter,
    mastodon: MastodonPlatform,
    door: RecordingDoor,
) -> None:
    reset = (datetime.now(UTC) + timedelta(minutes=4)).replace(microsecond=0)
    api.get(SEARCH).respond(
        429,
        headers={
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.isoformat().replace("+00:00", ".000Z"),
        },
    )
    with pytest.raises(RateLimited) as caught:
        _search(mastodon)
    assert 230 <= caught.value.retry_after <= 240
    assert door.observed == [("search", RateLimitInfo(300, 0, reset))]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_error_on_a_create_is_outcome_unknown(
    api: respx.MockRouter, mastodon: MastodonPlatform, status: int
) -> None:
    api.post(STATUSES).respond(status, text="upstream failed")
    with pytest.raises(OutcomeUnknown) as caught:
        _create(mastodon)
    assert caught.value.status_code == status
    _assert_no_token(caught.value)


def test_server_error_on_a_read_is_transient(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.get(SEARCH).respond(500)
    with pytest.raises(Transient):
        _search(mastodon)


def test_503_on_a_create_is_transient(api: respx.MockRouter, mastodon: MastodonPlatform) -> None:
    api.post(STATUSES).respond(503)
    with pytest.raises(Transient) as caught:
        _create(mastodon)
    assert caught.value.status_code == 503


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_no_answer_to_a_create_is_outcome_unknown(
    api: respx.MockRouter, mastodon: MastodonPlatform, failure: type[Exception]
) -> None:
    api.post(STATUSES).mock(side_effect=failure)
    with pytest.raises(OutcomeUnknown) as caught:
        _create(mastodon)
    assert caught.value.status_code is None
    _assert_no_token(caught.value)


def test_a_read_timeout_on_a_read_is_transient(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.get(SEARCH).mock(side_effect=httpx.ReadTimeout)
    with pytest.raises(Transient):
        _search(mastodon)


@pytest.mark.parametrize("failure", [httpx.ConnectError, httpx.ConnectTimeout])
def test_a_connect_failure_is_transient_even_on_a_create(
    api: respx.MockRouter, mastodon: MastodonPlatform, failure: type[Exception]
) -> None:
    api.post(STATUSES).mock(side_effect=failure)
    with pytest.raises(Transient) as caught:
        _create(mastodon)
    assert failure.__name__ in str(caught.value)
    _assert_no_token(caught.value)


def test_the_token_never_shows_even_when_the_url_is_in_the_error(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        raise httpx.ConnectError(f"cannot reach {request.url}", request=request)

    api.post(STATUSES).mock(side_effect=explode)
    with pytest.raises(Transient) as caught:
        _create(mastodon)
    _assert_no_token(caught.value)


def test_a_proxy_error_page_on_a_refused_request_is_summarised_by_its_title(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    page = (
        "<html><head><title>Attention Required! | Cloudflare</title></head><body>"
        + "<p>blocked</p>" * 500
        + "</body></html>"
    )
    api.post(STATUSES).respond(403, text=page, headers={"Content-Type": "text/html"})
    with pytest.raises(Rejected) as caught:
        _create(mastodon)
    assert str(caught.value) == (
        "mastodon: request rejected (HTTP 403): Attention Required! | Cloudflare"
    )
    assert caught.value.full_text.startswith("mastodon: request rejected (HTTP 403): <html>")


def test_an_instance_nobody_listens_on_is_named_in_the_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    platform = MastodonPlatform(f"http://127.0.0.1:{port}", TOKEN, door=RecordingDoor(), timeout=2)
    try:
        with pytest.raises(Transient) as caught:
            platform.search("secret-query-q7", limit=5, since=datetime(2025, 1, 1, tzinfo=UTC))
    finally:
        platform.close()
    message = str(caught.value)
    assert f"ConnectError reaching 127.0.0.1:{port} (Connection refused)" in message
    assert "secret-query-q7" not in message and "/api" not in message
    _assert_no_token(caught.value)


def test_a_create_answered_2xx_with_a_broken_body_is_outcome_unknown(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.post(STATUSES).respond(200, text="<html>proxy page</html>")
    with pytest.raises(OutcomeUnknown):
        _create(mastodon)


def test_identity_and_limits_come_from_the_instance(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.get("/api/v2/instance").respond(
        200,
        json={
            "domain": "social.example",
            "configuration": {
                "statuses": {"max_characters": 1000, "characters_reserved_per_url": 30},
                "media_attachments": {"supported_mime_types": ["image/png", "video/mp4"]},
            },
        },
    )
    api.get("/api/v1/accounts/verify_credentials").respond(
        200, json={"id": 109, "username": "brand", "acct": "brand"}
    )
    identity = mastodon.whoami()
    assert identity.stable_key == "109@social.example"
    limits = mastodon.content_rules()
    assert (limits.max_characters, limits.characters_per_url) == (1000, 30)
    assert limits.image_mime_types == ("image/png",)
    assert mastodon.text_length("see https://example.com/x", limits) == 4 + 30


def _status(number: int, created: datetime, reply_to: str | None = None) -> dict:
    return {
        "id": str(number),
        "url": f"{BASE}/@brand/{number}",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "content": f"<p>post {number}</p>",
        "in_reply_to_id": reply_to,
        "account": {"id": "109", "acct": "brand"},
    }


def test_recent_own_posts_pages_back_to_since(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    api.get("/api/v1/accounts/verify_credentials").respond(
        200, json={"id": "109", "username": "brand"}
    )
    api.get("/api/v2/instance").respond(200, json={"domain": "social.example"})
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    statuses = [_status(1000 - n, now - timedelta(minutes=n)) for n in range(100)]

    def page(request: httpx.Request) -> httpx.Response:
        max_id = request.url.params.get("max_id")
        newer = [s for s in statuses if max_id is None or int(s["id"]) < int(max_id)]
        return httpx.Response(200, json=newer[: int(request.url.params["limit"])])

    route = api.get("/api/v1/accounts/109/statuses").mock(side_effect=page)
    posts = mastodon.recent_own_posts(since=now - timedelta(minutes=50))
    assert [p.id for p in posts] == [str(1000 - n) for n in range(51)]
    assert posts[0].text == "post 1000"
    assert route.call_count == 2  # the second page reached past `since`: no third


def test_reconciliation_that_reaches_its_limit_before_the_plan_is_inconclusive(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    """More own posts since the plan than reconciliation reads: a miss among the newest
    is no proof that the delivery is not out, so it is never reported as a miss."""
    now = datetime.now(UTC)
    statuses = [_status(100_000 - n, now - timedelta(seconds=n)) for n in range(RECONCILE_LIMIT)]

    def page(request: httpx.Request) -> httpx.Response:
        max_id = request.url.params.get("max_id")
        newer = [s for s in statuses if max_id is None or int(s["id"]) < int(max_id)]
        return httpx.Response(200, json=newer[: int(request.url.params["limit"])])

    api.get("/api/v1/accounts/109/statuses").mock(side_effect=page)
    sought = Delivery(
        delivery_id="d1",
        kind=DeliveryKind.REPLY,
        subject="not-among-them",
        text="hi",
        planned_at=now - timedelta(days=1),
    )
    with pytest.raises(Inconclusive, match=f"newest {RECONCILE_LIMIT} own posts"):
        mastodon.find_delivery(sought)
    # Within the limit, a miss is a miss.
    recent = sought.model_copy(update={"planned_at": now - timedelta(seconds=100)})
    assert mastodon.find_delivery(recent) is None


def test_a_publish_is_never_found_in_a_post_another_delivery_took(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    """Two posts of the same text: the one the ledger already gave another delivery is
    skipped, the other found; with both taken, the text is not out for this delivery."""
    now = datetime.now(UTC)
    same = [_status(2, now - timedelta(seconds=5)), _status(1, now - timedelta(seconds=9))]
    for status in same:
        status["content"] = "<p>Good morning!</p>"
    api.get("/api/v1/accounts/109/statuses").respond(200, json=same)
    sought = Delivery(
        delivery_id="d2",
        kind=DeliveryKind.PUBLISH,
        subject="post-2/brand",
        text="Good morning!",
        planned_at=now - timedelta(minutes=1),
        taken_ids=frozenset({"2"}),
    )
    found = mastodon.find_delivery(sought)
    assert found is not None and found.remote_id == "1"
    both = sought.model_copy(update={"taken_ids": frozenset({"1", "2"})})
    assert mastodon.find_delivery(both) is None


def test_a_publish_is_found_by_its_text_and_the_uploads_it_staged(
    api: respx.MockRouter, mastodon: MastodonPlatform
) -> None:
    """Two publishes of one text to one account, one with images and one without, both in
    doubt: each is found by its own post. Matched by text alone, the one without images
    took the newer post (the other's, with its images), and the other, finding its post
    taken, was sent again with uploads already attached, refused and dead: a lost post."""
    now = datetime.now(UTC)
    with_images = _status(12, now) | {
        "content": "<p>Same words</p>",
        "media_attachments": [{"id": "m1"}, {"id": "m2"}],
    }
    without = _status(11, now - timedelta(seconds=5)) | {
        "content": "<p>Same words</p>",
        "media_attachments": [],
    }
    api.get("/api/v1/accounts/109/statuses").respond(200, json=[with_images, without])
    plain = Delivery(
        delivery_id="d-plain",
        kind=DeliveryKind.PUBLISH,
        subject="p1/brand",
        text="Same words",
        planned_at=now - timedelta(minutes=1),
    )
    found = mastodon.find_delivery(plain)
    assert found is not None and found.remote_id == "11"
    illustrated = plain.model_copy(
        update={"delivery_id": "d-images", "subject": "p2/brand", "staged_id": "r1:m1,m2"}
    )
    found = mastodon.find_delivery(illustrated)
    assert found is not None and found.remote_id == "12"
    # Uploads staged but never attached to a post: its create never went out.
    unsent = illustrated.model_copy(update={"staged_id": "r2:m7"})
    assert mastodon.find_delivery(unsent) is None
