"""The fakes keep state and refuse what the platforms refuse (platforms.md §1, §2)."""

from __future__ import annotations

import base64
import io
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from PIL import Image

from social_pipelines.platforms.auth import jwt_expiry, pkce_pair
from social_pipelines_tests.fakes.bluesky import PDS_HOST, BlueskyFake, tid_for
from social_pipelines_tests.fakes.x import XFake

NOW = datetime.now(UTC)


def _jpeg(size: tuple[int, int] = (40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


# -- Bluesky --------------------------------------------------------------------------------


@pytest.fixture
def bsky() -> tuple[BlueskyFake, httpx.Client]:
    fake = BlueskyFake()
    fake.add_account("acme.bsky.social", app_password="abcd-efgh-ijkl-mnop")
    return fake, httpx.Client(base_url="https://bsky.social", transport=httpx.MockTransport(fake))


def _login(client: httpx.Client) -> dict:
    answer = client.post(
        "/xrpc/com.atproto.server.createSession",
        json={"identifier": "acme.bsky.social", "password": "abcd-efgh-ijkl-mnop"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_bluesky_session_is_checked_rotated_and_expires(
    bsky: tuple[BlueskyFake, httpx.Client],
) -> None:
    fake, client = bsky
    wrong = client.post(
        "/xrpc/com.atproto.server.createSession",
        json={"identifier": "acme.bsky.social", "password": "nope"},
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "AuthenticationRequired"
    session = _login(client)
    expiry = jwt_expiry(session["accessJwt"])
    # The fake dates tokens from the clock, not from this module's import time.
    now = datetime.now(UTC)
    assert expiry is not None and timedelta(minutes=119) < expiry - now <= timedelta(minutes=121)
    [pds] = [s for s in session["didDoc"]["service"] if s["id"] == "#atproto_pds"]
    assert pds["serviceEndpoint"] == f"https://{PDS_HOST}"
    assert "ratelimit-limit" in wrong.headers and wrong.headers["ratelimit-policy"] == "30;w=300"

    def get_session(token: str) -> httpx.Response:
        return client.get(
            "/xrpc/com.atproto.server.getSession", headers={"Authorization": f"Bearer {token}"}
        )

    assert get_session(session["accessJwt"]).json()["did"] == session["did"]
    assert get_session(session["refreshJwt"]).json()["message"] == "Bad token scope"
    assert client.get("/xrpc/com.atproto.server.getSession").status_code == 401
    fake.expire_access_tokens()
    expired = get_session(session["accessJwt"])
    assert (expired.status_code, expired.json()["error"]) == (400, "ExpiredToken")

    def refresh(token: str) -> httpx.Response:
        return client.post(
            "/xrpc/com.atproto.server.refreshSession", headers={"Authorization": f"Bearer {token}"}
        )

    fresh = refresh(session["refreshJwt"])
    assert fresh.status_code == 200 and fresh.json()["refreshJwt"] != session["refreshJwt"]
    assert get_session(fresh.json()["accessJwt"]).status_code == 200
    reused = refresh(session["refreshJwt"])
    assert (reused.status_code, reused.json()["error"]) == (400, "ExpiredToken")
    assert refresh(fresh.json()["accessJwt"]).json()["error"] == "InvalidToken"


def test_bluesky_records_keys_collisions_and_lists(
    bsky: tuple[BlueskyFake, httpx.Client],
) -> None:
    fake, client = bsky
    session = _login(client)
    auth = {"Authorization": f"Bearer {session['accessJwt']}"}
    record = {"$type": "app.bsky.feed.post", "text": "hello", "createdAt": "2026-12-01T10:00:00Z"}

    def create(rkey: str | None, **extra: object) -> httpx.Response:
        body = {"repo": session["did"], "collection": "app.bsky.feed.post", "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        return client.post(
            "/xrpc/com.atproto.repo.createRecord", json={**body, **extra}, headers=auth
        )

    bad = create("not-a-tid")
    assert bad.status_code == 400 and "Invalid TID string" in bad.json()["message"]
    key = tid_for(NOW)
    first = create(key)
    assert first.status_code == 200 and first.json()["uri"].endswith(f"/app.bsky.feed.post/{key}")
    again = create(key)
    assert (again.status_code, again.json()["error"]) == (500, "InternalServerError")
    assert len(fake.posts_of("acme.bsky.social")) == 1
    fake.lose_create_answers.append(500)
    lost_key = tid_for(NOW + timedelta(seconds=1))
    assert create(lost_key).status_code == 500
    found = client.get(
        "/xrpc/com.atproto.repo.getRecord",
        params={"repo": session["did"], "collection": "app.bsky.feed.post", "rkey": lost_key},
        headers=auth,
    )
    assert found.status_code == 200 and found.json()["value"]["text"] == "hello"
    missing = client.get(
        "/xrpc/com.atproto.repo.getRecord",
        params={
            "repo": session["did"],
            "collection": "app.bsky.feed.post",
            "rkey": tid_for(NOW)[:-1] + "z",
        },
        headers=auth,
    )
    assert (missing.status_code, missing.json()["error"]) == (400, "RecordNotFound")
    page = client.get(
        "/xrpc/com.atproto.repo.listRecords",
        params={"repo": session["did"], "collection": "app.bsky.feed.post", "limit": 1},
        headers=auth,
    ).json()
    assert [r["uri"].rsplit("/", 1)[1] for r in page["records"]] == [lost_key]
    rest = client.get(
        "/xrpc/com.atproto.repo.listRecords",
        params={
            "repo": session["did"],
            "collection": "app.bsky.feed.post",
            "cursor": page["cursor"],
        },
        headers=auth,
    ).json()
    assert [r["uri"].rsplit("/", 1)[1] for r in rest["records"]] == [key]


def test_bluesky_search_images_and_public_appview(
    bsky: tuple[BlueskyFake, httpx.Client],
) -> None:
    fake, client = bsky
    session = _login(client)
    auth = {"Authorization": f"Bearer {session['accessJwt']}"}
    for hours in (30, 5, 1):
        fake.seed_post(
            "dana.bsky.social",
            f"dagster question {hours} @acme.bsky.social",
            created_at=NOW - timedelta(hours=hours),
        )
    fake.seed_post("eve.bsky.social", "nothing to see", created_at=NOW - timedelta(hours=2))
    found = client.get(
        "/xrpc/app.bsky.feed.searchPosts",
        params={"q": "Dagster", "since": (NOW - timedelta(hours=24)).isoformat(), "limit": 1},
        headers=auth,
    ).json()
    assert [p["record"]["text"].split()[2] for p in found["posts"]] == ["1"]
    more = client.get(
        "/xrpc/app.bsky.feed.searchPosts",
        params={"q": "dagster", "cursor": found["cursor"], "mentions": "acme.bsky.social"},
        headers=auth,
    ).json()
    assert [p["record"]["text"].split()[2] for p in more["posts"]] == ["5", "30"]
    with httpx.Client(transport=httpx.MockTransport(fake)) as public:
        anonymous = public.get(
            "https://public.api.bsky.app/xrpc/app.bsky.feed.searchPosts", params={"q": "dagster"}
        )
    assert anonymous.status_code == 403

    blob = client.post(
        "/xrpc/com.atproto.repo.uploadBlob",
        content=b"\xff\xd8\xff" + b"0" * 1_000_001,
        headers={**auth, "Content-Type": "image/jpeg"},
    ).json()["blob"]
    too_big = client.post(
        "/xrpc/com.atproto.repo.createRecord",
        json={
            "repo": session["did"],
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "",
                "createdAt": "2026-12-01T10:00:00Z",
                "embed": {
                    "$type": "app.bsky.embed.images",
                    "images": [{"alt": "x", "image": blob}],
                },
            },
        },
        headers=auth,
    )
    assert too_big.status_code == 400 and "too large" in too_big.json()["message"]


# -- X --------------------------------------------------------------------------------------


@pytest.fixture
def x() -> tuple[XFake, httpx.Client, dict[str, str]]:
    fake = XFake(client_id="cid", client_secret="csecret")
    verifier, challenge = pkce_pair()
    code = fake.authorize("acme", redirect_uri="http://127.0.0.1/cb", code_challenge=challenge)
    client = httpx.Client(base_url="https://api.x.com", transport=httpx.MockTransport(fake))
    basic = "Basic " + base64.b64encode(b"cid:csecret").decode()
    answer = client.post(
        "/2/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": "http://127.0.0.1/cb",
        },
        headers={"Authorization": basic},
    )
    assert answer.status_code == 200, answer.text
    return fake, client, answer.json()


def test_x_tokens_rotate_and_expire(x: tuple[XFake, httpx.Client, dict[str, str]]) -> None:
    fake, client, tokens = x
    assert tokens["expires_in"] == 7200 and "offline.access" in tokens["scope"]
    me = client.get("/2/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["data"]["username"] == "acme"
    assert me.headers["x-rate-limit-limit"] == "75"
    no_client = client.post(
        "/2/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert no_client.status_code == 401
    basic = "Basic " + base64.b64encode(b"cid:csecret").decode()

    def refresh(token: str) -> httpx.Response:
        return client.post(
            "/2/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            headers={"Authorization": basic},
        )

    fresh = refresh(tokens["refresh_token"])
    assert fresh.status_code == 200 and fresh.json()["refresh_token"] != tokens["refresh_token"]
    reused = refresh(tokens["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    fake.expire_access_tokens()
    dead = client.get("/2/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert dead.status_code == 401 and dead.json()["title"] == "Unauthorized"


def test_x_reads_writes_and_refusals(x: tuple[XFake, httpx.Client, dict[str, str]]) -> None:
    fake, client, tokens = x
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    asked = fake.seed_post(
        "dana", "@acme how do I run dagster? & more", created_at=NOW - timedelta(hours=2)
    )
    other = fake.seed_post(
        "eve", "dagster is neat https://dagster.io", created_at=NOW - timedelta(hours=1)
    )
    acme = fake.user("acme")
    assert acme is not None
    mentions = client.get(f"/2/users/{acme.id}/mentions", headers=auth).json()
    assert mentions["data"] == [
        {
            "id": asked.id,
            "text": "@acme how do I run dagster? &amp; more",
            "edit_history_tweet_ids": [asked.id],
        }
    ]
    assert mentions["meta"]["result_count"] == 1
    bad = client.get(
        "/2/tweets/search/recent", params={"query": "dagster", "bogus": "1"}, headers=auth
    )
    assert bad.status_code == 400
    old = (NOW - timedelta(days=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        client.get(
            "/2/tweets/search/recent", params={"query": "dagster", "start_time": old}, headers=auth
        ).status_code
        == 400
    )
    page = client.get(
        "/2/tweets/search/recent",
        params={
            "query": "dagster -is:reply",
            "tweet.fields": "created_at,entities",
            "expansions": "author_id",
        },
        headers=auth,
    ).json()
    assert [t["id"] for t in page["data"]] == [other.id, asked.id]
    [link] = page["data"][0]["entities"]["urls"]
    assert link["expanded_url"] == "https://dagster.io" and link["url"] in page["data"][0]["text"]
    assert {u["username"] for u in page["includes"]["users"]} == {"dana", "eve"}

    def post(body: dict) -> httpx.Response:
        return client.post("/2/tweets", json=body, headers=auth)

    refused = post({"text": "Hi eve", "reply": {"in_reply_to_tweet_id": other.id}})
    assert refused.status_code == 403 and "not been mentioned" in refused.json()["detail"]
    reply = post({"text": "Hi dana", "reply": {"in_reply_to_tweet_id": asked.id}})
    assert reply.status_code == 201 and set(reply.json()["data"]) == {
        "id",
        "text",
        "edit_history_tweet_ids",
    }
    duplicate = post({"text": "Hi dana", "reply": {"in_reply_to_tweet_id": asked.id}})
    assert duplicate.status_code == 403 and "duplicate content" in duplicate.json()["detail"]

    upload = client.post(
        "/2/media/upload",
        files={"media": ("a.jpg", _jpeg(), "image/jpeg")},
        data={"media_category": "tweet_image"},
        headers=auth,
    ).json()["data"]
    assert upload["media_key"] == f"3_{upload['id']}" and upload["image"]["w"] == 40
    alt = client.post(
        "/2/media/metadata",
        json={"id": upload["id"], "metadata": {"alt_text": {"text": "a blue card"}}},
        headers=auth,
    )
    assert alt.status_code == 200 and fake.media[upload["id"]].alt_text == "a blue card"
    made = post({"text": "Launch day", "media": {"media_ids": [upload["id"]]}})
    assert made.status_code == 201 and made.json()["data"]["text"].startswith(
        "Launch day https://t.co/"
    )
    timeline = client.get(
        f"/2/users/{acme.id}/tweets",
        params={"tweet.fields": "attachments,referenced_tweets", "max_results": 5},
        headers=auth,
    ).json()
    assert timeline["data"][0]["attachments"] == {"media_keys": [upload["media_key"]]}
    assert timeline["data"][1]["referenced_tweets"] == [{"type": "replied_to", "id": asked.id}]
    assert json.loads(json.dumps(timeline))["meta"]["result_count"] == 2
