"""The Mastodon endpoints, driven over HTTP against the real server."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.sandbox.fixtures import png_bytes

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def auth(username: str = "brand") -> dict[str, str]:
    return {"Authorization": f"Bearer sandbox-token-{username}"}


def test_auth_is_required_and_checked(sandbox: SandboxProcess):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
        response = httpx.get(f"{sandbox.url}/api/v1/accounts/verify_credentials", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "The access token is invalid"}
    response = httpx.get(f"{sandbox.url}/api/v1/accounts/verify_credentials", headers=auth())
    assert response.status_code == 200
    me = response.json()
    assert me["username"] == "brand" and me["acct"] == "brand"
    assert me["display_name"] == "Acme Data"
    assert isinstance(me["id"], str) and me["id"].isdigit()
    assert ISO_MS.match(me["created_at"])
    assert me["url"] == f"{sandbox.url}/@brand"
    assert me["source"]["privacy"] == "public"
    # The query-parameter form of the token works too (Doorkeeper accepts it).
    by_param = httpx.get(
        f"{sandbox.url}/api/v1/accounts/verify_credentials",
        params={"access_token": "sandbox-token-datadiana"},
    )
    assert by_param.json()["username"] == "datadiana"


def test_account_ids_are_stable_and_lookup_works(sandbox: SandboxProcess):
    with sandbox.client() as client:
        me = client.get("/api/v1/accounts/verify_credentials").json()
        looked_up = client.get("/api/v1/accounts/lookup", params={"acct": "brand"}).json()
        by_id = client.get(f"/api/v1/accounts/{me['id']}").json()
        assert looked_up["id"] == by_id["id"] == me["id"] == "109265603788800000"
        assert client.get("/api/v1/accounts/123").status_code == 404
    created = sandbox.create_account("newcomer", "New Comer")
    assert created["token"] == "sandbox-token-newcomer" and created["created"] is True
    again = sandbox.create_account("newcomer")
    assert again["created"] is False and again["account"]["id"] == created["account"]["id"]
    with sandbox.client("newcomer") as client:
        assert client.get("/api/v1/accounts/verify_credentials").json()["display_name"] == (
            "New Comer"
        )


def test_instance_is_public_and_names_the_domain(sandbox: SandboxProcess):
    v2 = httpx.get(f"{sandbox.url}/api/v2/instance")
    assert v2.status_code == 200
    body = v2.json()
    assert body["domain"] == "sandbox.local"
    assert body["version"] == "4.3.0"
    config = body["configuration"]
    assert config["statuses"] == {
        "max_characters": 500,
        "max_media_attachments": 4,
        "characters_reserved_per_url": 23,
    }
    media = config["media_attachments"]
    assert media["image_size_limit"] == 16777216
    assert media["image_matrix_limit"] == 33177600
    assert media["description_limit"] == 1500
    assert "image/png" in media["supported_mime_types"]
    v1 = httpx.get(f"{sandbox.url}/api/v1/instance/").json()  # trailing slash, like Rails
    assert v1["uri"] == "sandbox.local"
    assert v1["configuration"]["statuses"]["max_characters"] == 500


def test_search_matches_every_word_newest_first(sandbox: SandboxProcess):
    sandbox.seed(
        [
            {
                "key": "old",
                "author": "datadiana",
                "text": "Dagster and my data pipeline",
                "age_minutes": 300,
            },
            {
                "key": "new",
                "author": "etl_ed",
                "text": "A DATA PIPELINE built with dagster!",
                "age_minutes": 200,
            },
            {"key": "half", "author": "sql_sara", "text": "Only dagster here", "age_minutes": 100},
            {"key": "off", "author": "cloudkev", "text": "Sourdough update", "age_minutes": 50},
        ]
    )
    with sandbox.client() as client:
        response = client.get(
            "/api/v2/search", params={"q": "pipeline Dagster", "type": "statuses"}
        )
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"accounts", "statuses", "hashtags"}
        texts = [status["content"] for status in body["statuses"]]
        assert texts == [
            "<p>A DATA PIPELINE built with dagster!</p>",
            "<p>Dagster and my data pipeline</p>",
        ]
        ids = [status["id"] for status in body["statuses"]]
        assert int(ids[0]) > int(ids[1])
        one = client.get("/api/v2/search", params={"q": "dagster", "type": "statuses", "limit": 1})
        assert len(one.json()["statuses"]) == 1
        page2 = client.get(
            "/api/v2/search", params={"q": "dagster", "type": "statuses", "limit": 1, "offset": 1}
        ).json()["statuses"]
        assert page2[0]["id"] != one.json()["statuses"][0]["id"]
        older = client.get(
            "/api/v2/search", params={"q": "dagster", "type": "statuses", "max_id": ids[0]}
        ).json()["statuses"]
        assert ids[0] not in [status["id"] for status in older]
        phrase = client.get("/api/v2/search", params={"q": '"data pipeline" -built'}).json()
        assert [s["account"]["acct"] for s in phrase["statuses"]] == ["datadiana"]
        by_author = client.get("/api/v2/search", params={"q": "dagster from:sql_sara"}).json()
        assert [s["account"]["acct"] for s in by_author["statuses"]] == ["sql_sara"]
        today = datetime.now(UTC).date().isoformat()
        during = client.get("/api/v2/search", params={"q": f"dagster during:{today}"}).json()
        before = client.get("/api/v2/search", params={"q": f"dagster before:{today}"}).json()
        assert len(during["statuses"]) + len(before["statuses"]) == 3
        accounts = client.get("/api/v2/search", params={"q": "diana", "type": "accounts"}).json()
        assert [a["acct"] for a in accounts["accounts"]] == ["datadiana"]
        assert client.get("/api/v2/search", params={"q": ""}).status_code == 400


def test_create_status_shapes_and_replies(sandbox: SandboxProcess):
    seeded = sandbox.seed([{"key": "q", "author": "datadiana", "text": "Dagster question?"}])
    parent_id = seeded["statuses"][0]
    with sandbox.client() as client:
        response = client.post(
            "/api/v1/statuses",
            data={
                "status": "Hi @datadiana, try this:\n\nSee https://example.com <b> #Dagster",
                "in_reply_to_id": parent_id,
                "visibility": "public",
                "language": "en",
            },
        )
        assert response.status_code == 200, response.text
        status = response.json()
        assert response.headers["X-RateLimit-Limit"] == "300"
        assert status["in_reply_to_id"] == parent_id
        assert status["in_reply_to_account_id"] == seeded_account_id(client, "datadiana")
        assert ISO_MS.match(status["created_at"])
        assert status["url"] == f"{sandbox.url}/@brand/{status['id']}"
        assert status["uri"] == f"https://sandbox.local/users/brand/statuses/{status['id']}"
        assert status["content"].startswith('<p>Hi <span class="h-card"')
        assert '</p><p>See <a href="https://example.com"' in status["content"]
        assert "&lt;b&gt;" in status["content"]
        assert status["mentions"][0]["acct"] == "datadiana"
        assert status["tags"] == [{"name": "dagster", "url": f"{sandbox.url}/tags/dagster"}]
        for key in ("reblog", "poll", "card", "edited_at"):
            assert status[key] is None
        assert status["account"]["username"] == "brand"
        fetched = client.get(f"/api/v1/statuses/{status['id']}").json()
        assert fetched["id"] == status["id"]
        parent = client.get(f"/api/v1/statuses/{parent_id}").json()
        assert parent["replies_count"] == 1
        as_json = client.post("/api/v1/statuses", json={"status": "json body", "sensitive": True})
        assert as_json.status_code == 200 and as_json.json()["sensitive"] is True
        multipart = client.post("/api/v1/statuses", files={"status": (None, "multipart body")})
        assert multipart.status_code == 200
        assert multipart.json()["content"] == "<p>multipart body</p>"
    posted = sandbox.posted()
    assert [p["text"] for p in posted][1:] == ["json body", "multipart body"]
    assert posted[0]["in_reply_to_id"] == parent_id and posted[0]["account"] == "brand"
    assert sandbox.stats()["statuses_created"] == 3


def seeded_account_id(client: httpx.Client, username: str) -> str:
    return client.get("/api/v1/accounts/lookup", params={"acct": username}).json()["id"]


def test_create_status_validation(sandbox: SandboxProcess):
    with sandbox.client() as client:
        blank = client.post("/api/v1/statuses", data={"status": "   "})
        assert blank.status_code == 422
        assert blank.json() == {"error": "Validation failed: Text can't be blank"}
        too_long = client.post("/api/v1/statuses", data={"status": "x" * 501})
        assert too_long.status_code == 422
        assert too_long.json()["error"] == "Validation failed: Text character limit of 500 exceeded"
        # A URL counts as 23 characters whatever its length.
        url = "https://example.com/" + "a" * 300
        fits = client.post("/api/v1/statuses", data={"status": "x" * 470 + " " + url})
        assert fits.status_code == 200, fits.text
        missing_parent = client.post(
            "/api/v1/statuses", data={"status": "hi", "in_reply_to_id": "12345"}
        )
        assert missing_parent.status_code == 404
        assert "does not appear to exist" in missing_parent.json()["error"]
        missing_media = client.post("/api/v1/statuses", json={"status": "hi", "media_ids": ["999"]})
        assert missing_media.status_code == 422
        assert missing_media.json()["error"] == (
            "Media 999 not found or already attached to another post"
        )
        bad_visibility = client.post("/api/v1/statuses", data={"status": "hi", "visibility": "x"})
        assert bad_visibility.status_code == 422
        assert client.get("/api/v1/statuses/1").status_code == 404
    assert len(sandbox.posted()) == 1


def test_media_upload_serve_and_attach(sandbox: SandboxProcess):
    image = png_bytes(40, 30)
    with sandbox.client() as client:
        response = client.post(
            "/api/v2/media",
            files={"file": ("chart.png", image, "image/png")},
            data={"description": "A bar chart"},
        )
        assert response.status_code == 200, response.text
        media = response.json()
        assert media["type"] == "image" and media["description"] == "A bar chart"
        assert media["meta"]["original"] == {
            "width": 40,
            "height": 30,
            "size": "40x30",
            "aspect": 40 / 30,
        }
        assert media["blurhash"]
        served = httpx.get(media["url"])
        assert served.content == image and served.headers["content-type"] == "image/png"
        assert httpx.get(media["preview_url"]).status_code == 200
        assert client.get(f"/api/v1/media/{media['id']}").json()["id"] == media["id"]
        status = client.post(
            "/api/v1/statuses", data={"status": "", "media_ids[]": [media["id"]]}
        ).json()
        assert [m["id"] for m in status["media_attachments"]] == [media["id"]]
        again = client.post("/api/v1/statuses", data={"status": "x", "media_ids[]": media["id"]})
        assert again.status_code == 422  # already attached
        # Mislabelled but valid bytes are sniffed; garbage and other types are refused.
        relabelled = client.post("/api/v2/media", files={"file": ("a.jpg", image, "image/jpeg")})
        assert relabelled.json()["url"].endswith(".png")
        text = client.post("/api/v2/media", files={"file": ("a.txt", b"hello", "text/plain")})
        assert text.status_code == 422
        assert text.json()["error"] == "Validation failed: File content type is invalid"
        huge = client.post(
            "/api/v2/media",
            files={"file": ("big.png", image + b"\x00" * (16 * 1024 * 1024), "image/png")},
        )
        assert huge.status_code == 422
        assert "16 MB" in huge.json()["error"]
    assert sandbox.posted()[0]["media_ids"] == [media["id"]]
    assert sandbox.stats()["media_uploaded"] == 2


def test_account_statuses_paging(sandbox: SandboxProcess):
    with sandbox.client() as client:
        me = client.get("/api/v1/accounts/verify_credentials").json()
        ids = [
            client.post("/api/v1/statuses", data={"status": f"post {n}"}).json()["id"]
            for n in range(5)
        ]
        reply = client.post(
            "/api/v1/statuses", data={"status": "reply", "in_reply_to_id": seed_one(sandbox)}
        ).json()["id"]
        page = client.get(f"/api/v1/accounts/{me['id']}/statuses", params={"limit": 2})
        assert [s["id"] for s in page.json()] == [reply, ids[4]]
        link = page.headers["Link"]
        assert f"max_id={ids[4]}" in link and 'rel="next"' in link and 'rel="prev"' in link
        older = client.get(
            f"/api/v1/accounts/{me['id']}/statuses", params={"limit": 2, "max_id": ids[4]}
        ).json()
        assert [s["id"] for s in older] == [ids[3], ids[2]]
        newer = client.get(
            f"/api/v1/accounts/{me['id']}/statuses", params={"limit": 2, "min_id": ids[0]}
        ).json()
        assert [s["id"] for s in newer] == [ids[2], ids[1]]
        since = client.get(
            f"/api/v1/accounts/{me['id']}/statuses", params={"since_id": ids[3]}
        ).json()
        assert [s["id"] for s in since] == [reply, ids[4]]
        no_replies = client.get(
            f"/api/v1/accounts/{me['id']}/statuses", params={"exclude_replies": "true"}
        ).json()
        assert [s["id"] for s in no_replies] == list(reversed(ids))
        assert client.get("/api/v1/accounts/1/statuses").status_code == 404


def seed_one(sandbox: SandboxProcess) -> str:
    return sandbox.seed([{"author": "etl_ed", "text": "something"}])["statuses"][0]


def test_status_page_opens_in_a_browser(sandbox: SandboxProcess):
    with sandbox.client() as client:
        status = client.post("/api/v1/statuses", data={"status": "hello web"}).json()
    page = httpx.get(status["url"])
    assert page.status_code == 200 and "hello web" in page.text
