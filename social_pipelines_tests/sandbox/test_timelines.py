"""The hashtag timeline and the notifications endpoint, over HTTP against the real server:
what they return, how they page, and that the pipeline (auth, rate limit, faults) applies
to them like to every other endpoint."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx

from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.sandbox.state import Sandbox, SandboxConfig
from social_pipelines.sandbox.statuses import NewStatus, Page


def _links(response: httpx.Response) -> dict[str, dict[str, list[str]]]:
    """`rel` -> the query of its URL."""
    found = {}
    for part in response.headers.get("link", "").split(","):
        if not part.strip():
            continue
        url, rel = part.split(";")
        found[rel.split("=")[1].strip('"')] = parse_qs(urlparse(url.strip()[1:-1]).query)
    return found


def test_the_tag_timeline_holds_public_statuses_carrying_the_tag(sandbox: SandboxProcess):
    ids = sandbox.seed(
        [
            {"key": "old", "author": "datadiana", "text": "#Dagster at last", "age_minutes": 30},
            {"key": "new", "author": "etl_ed", "text": "more #dagster!", "age_minutes": 10},
            {"key": "other", "author": "etl_ed", "text": "#dagsterio is not it", "age_minutes": 5},
            {"key": "plain", "author": "etl_ed", "text": "dagster, untagged", "age_minutes": 5},
            {"key": "quiet", "author": "sql_sara", "text": "#dagster", "visibility": "unlisted"},
            {"key": "mine", "author": "sql_sara", "text": "#dagster", "visibility": "private"},
            {"key": "link", "author": "cloudkev", "text": "https://x.example/#dagster"},
        ]
    )["by_key"]
    with sandbox.client() as client:
        response = client.get("/api/v1/timelines/tag/dagster")
        assert response.status_code == 200
        body = response.json()
        assert [status["id"] for status in body] == [ids["new"], ids["old"]]
        assert body[0]["tags"] == [{"name": "dagster", "url": f"{sandbox.url}/tags/dagster"}]
        # The tag is matched whatever its case, and with an encoded `#` as Mastodon
        # normalises it away.
        for path in ("/api/v1/timelines/tag/DAGSTER", "/api/v1/timelines/tag/%23dagster"):
            assert [s["id"] for s in client.get(path).json()] == [ids["new"], ids["old"]]
        # An unknown tag is an empty list, without a Link header (as on Mastodon).
        unknown = client.get("/api/v1/timelines/tag/nothing")
        assert unknown.status_code == 200 and unknown.json() == []
        assert "link" not in unknown.headers
        assert client.get("/api/v1/timelines/tag/dagster", params={"remote": "true"}).json() == []
        assert client.get("/api/v1/timelines/tag/dagster", params={"only_media": "1"}).json() == []


def test_the_tag_timeline_pages_like_mastodon(sandbox: SandboxProcess):
    ids = sandbox.seed(
        [{"author": "etl_ed", "text": f"#zebra {n}", "age_minutes": 100 - n} for n in range(50)]
    )["statuses"]
    newest = list(reversed(ids))
    with sandbox.client() as client:
        first = client.get("/api/v1/timelines/tag/zebra")
        assert [s["id"] for s in first.json()] == newest[:20]  # 20 by default
        links = _links(first)
        assert links["next"]["max_id"] == [newest[19]] and links["prev"]["min_id"] == [newest[0]]
        top = client.get("/api/v1/timelines/tag/zebra", params={"limit": 100}).json()
        assert len(top) == 40  # at most 40
        page = client.get("/api/v1/timelines/tag/zebra", params={"limit": 5, "max_id": newest[4]})
        assert [s["id"] for s in page.json()] == newest[5:10]
        # The next link carries the limit, and is there even on a short page.
        last = client.get("/api/v1/timelines/tag/zebra", params={"limit": 40, "max_id": newest[39]})
        assert [s["id"] for s in last.json()] == newest[40:]
        assert _links(last)["next"] == {"limit": ["40"], "max_id": [newest[-1]]}
        since = client.get("/api/v1/timelines/tag/zebra", params={"since_id": newest[3]}).json()
        assert [s["id"] for s in since] == newest[:3]
        after = client.get(
            "/api/v1/timelines/tag/zebra", params={"min_id": newest[-1], "limit": 2}
        ).json()
        assert [s["id"] for s in after] == [newest[-3], newest[-2]]


def test_the_tag_timeline_is_public_but_refuses_a_bad_token(sandbox: SandboxProcess):
    sandbox.seed([{"author": "etl_ed", "text": "#zebra"}])
    url = f"{sandbox.url}/api/v1/timelines/tag/zebra"
    assert len(httpx.get(url).json()) == 1
    refused = httpx.get(url, headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    assert refused.json() == {"error": "The access token is invalid"}
    # While tokens are expired, the brand's token is refused here as everywhere.
    sandbox.set_faults(expire_tokens_for=60)
    assert (
        httpx.get(url, headers={"Authorization": "Bearer sandbox-token-brand"}).status_code == 401
    )


def test_notifications_are_the_mentions_of_the_token_account(sandbox: SandboxProcess):
    ids = sandbox.seed(
        [
            {"key": "ask", "author": "datadiana", "text": "@brand how?", "age_minutes": 30},
            {"key": "dm", "author": "etl_ed", "text": "@brand psst", "visibility": "direct"},
            {"key": "other", "author": "etl_ed", "text": "@datadiana hi", "age_minutes": 20},
            {"key": "self", "author": "brand", "text": "@brand note to self", "age_minutes": 5},
            {"key": "far", "author": "etl_ed", "text": "@brand@elsewhere.example hi"},
            {"key": "here", "author": "sql_sara", "text": "@brand@sandbox.local hi"},
        ]
    )["by_key"]
    with sandbox.client() as client:
        response = client.get("/api/v1/notifications", params={"types[]": "mention"})
        assert response.status_code == 200
        body = response.json()
        # Newest first; no notification for mentioning yourself or someone elsewhere; a
        # direct mention is there, its status shown to the account it mentions.
        assert [n["status"]["id"] for n in body] == [ids["here"], ids["dm"], ids["ask"]]
        first = body[-1]
        assert first["type"] == "mention" and first["account"]["username"] == "datadiana"
        assert first["group_key"] == f"ungrouped-{first['id']}"
        assert first["created_at"] == first["status"]["created_at"]
        # Notification ids are their own sequence: never a status id.
        assert not {n["id"] for n in body} & set(ids.values())
        assert all(int(n["id"]) < int(n["status"]["id"]) for n in body)
        # Type filters as Mastodon combines them; a scalar `types=` is dropped (Rails).
        assert client.get("/api/v1/notifications", params={"types[]": "favourite"}).json() == []
        assert (
            client.get("/api/v1/notifications", params={"exclude_types[]": "mention"}).json() == []
        )
        assert len(client.get("/api/v1/notifications", params={"types": "favourite"}).json()) == 3
        both = client.get(
            "/api/v1/notifications",
            params={"types[]": ["mention", "follow"], "exclude_types[]": "follow"},
        )
        assert len(both.json()) == 3
        diana = client.get("/api/v1/accounts/lookup", params={"acct": "datadiana"}).json()["id"]
        from_diana = client.get("/api/v1/notifications", params={"account_id": diana}).json()
        assert [n["status"]["id"] for n in from_diana] == [ids["ask"]]
        assert client.get("/api/v1/notifications", params={"account_id": "x"}).json() == []
    with sandbox.client("datadiana") as client:
        assert [n["status"]["id"] for n in client.get("/api/v1/notifications").json()] == [
            ids["other"]
        ]
    assert httpx.get(f"{sandbox.url}/api/v1/notifications").status_code == 401


def test_notifications_page_like_mastodon(sandbox: SandboxProcess):
    sandbox.seed(
        [{"author": "etl_ed", "text": f"@brand {n}", "age_minutes": 200 - n} for n in range(100)]
    )
    with sandbox.client() as client:
        first = client.get("/api/v1/notifications", params={"types[]": "mention"})
        page = first.json()
        assert len(page) == 40  # 40 by default since Mastodon 4.1
        assert len(client.get("/api/v1/notifications", params={"limit": 500}).json()) == 80
        links = _links(first)
        assert links["next"] == {"types[]": ["mention"], "max_id": [page[-1]["id"]]}
        assert links["prev"]["min_id"] == [page[0]["id"]]
        ids = [n["id"] for n in page]
        assert ids == sorted(ids, key=int, reverse=True)
        second = client.get(
            "/api/v1/notifications", params={"types[]": "mention", "max_id": page[-1]["id"]}
        ).json()
        assert int(second[0]["id"]) < int(page[-1]["id"]) and len(second) == 40
        rest = client.get("/api/v1/notifications", params={"limit": 80, "max_id": second[-1]["id"]})
        assert len(rest.json()) == 20 and "next" in _links(rest)
        end = client.get("/api/v1/notifications", params={"max_id": rest.json()[-1]["id"]})
        assert end.json() == [] and "link" not in end.headers
        since = client.get("/api/v1/notifications", params={"since_id": ids[2]}).json()
        assert [n["id"] for n in since] == ids[:2]
        after = client.get("/api/v1/notifications", params={"min_id": ids[2], "limit": 1}).json()
        assert [n["id"] for n in after] == [ids[1]]


def test_faults_and_the_rate_limit_apply_to_both(sandbox: SandboxProcess):
    sandbox.seed([{"author": "etl_ed", "text": "@brand #zebra"}])
    sandbox.set_faults(
        error_503=1.0, endpoints=["GET /api/v1/timelines/tag", "GET /api/v1/notifications"]
    )
    with sandbox.client() as client:
        assert client.get("/api/v1/timelines/tag/zebra").status_code == 503
        assert client.get("/api/v1/notifications").status_code == 503
        assert client.get("/api/v1/accounts/verify_credentials").status_code == 200
    assert sandbox.stats()["faults"]["error_503"] == 2
    sandbox.clear_faults()
    sandbox.set_rate_limit(limit=2, window_seconds=3600)
    with sandbox.client() as client:
        ok = client.get("/api/v1/timelines/tag/zebra")
        assert ok.status_code == 200 and ok.headers["X-RateLimit-Remaining"] == "1"
        assert client.get("/api/v1/notifications").status_code == 200
        assert client.get("/api/v1/notifications").status_code == 429
        assert client.get("/api/v1/timelines/tag/zebra").status_code == 429
    assert sandbox.stats()["violations"] == 2


def test_a_file_from_before_tags_and_notifications_is_indexed_on_open(tmp_path: Path):
    """Statuses stored by an older sandbox get their tags and mentions when it opens."""
    path = tmp_path / "old.db"
    with_posts = Sandbox(SandboxConfig(db_path=path))
    brand = with_posts.accounts.by_username("brand")
    diana = with_posts.accounts.by_username("datadiana")
    assert brand is not None and diana is not None
    with with_posts.db.transaction():
        with_posts.statuses.insert(
            NewStatus(account_id=diana.id, text="@brand #zebra", created_at_ms=1, origin="seed")
        )
    with_posts.close()
    old = Database(path)  # as an older version left it: no index, version 2
    with old.transaction():
        old.execute("DELETE FROM status_tags")
        old.execute("DELETE FROM notifications")
        old.execute("PRAGMA user_version=2")
    old.close()

    reopened = Sandbox(SandboxConfig(db_path=path))
    try:
        assert len(reopened.statuses.tagged("zebra", Page(limit=5))) == 1
        assert len(reopened.notifications.of_account(brand.id, Page(limit=5))) == 1
    finally:
        reopened.close()
    assert Database(path).previous_version == 3
