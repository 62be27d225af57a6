"""Uploads still processing: 202 with no URL, 206 while polled, 422 when attached too early."""

from __future__ import annotations

import sqlite3
import time

import httpx
import pytest

from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.sandbox.statuses import Statuses
from social_pipelines_tests.sandbox.fixtures import png_bytes

NOT_FINISHED = "Cannot attach files that have not finished processing. Try again in a moment!"


def _upload(client: httpx.Client) -> httpx.Response:
    return client.post(
        "/api/v2/media",
        files={"file": ("chart.png", png_bytes(), "image/png")},
        data={"description": "a chart"},
    )


def test_off_by_default_every_upload_is_processed_at_once(sandbox: SandboxProcess):
    assert sandbox.media_processing() == {"processing_seconds": 0.0}
    with sandbox.client() as client:
        upload = _upload(client)
        assert upload.status_code == 200 and upload.json()["url"]
        assert client.get(f"/api/v1/media/{upload.json()['id']}").status_code == 200


def test_an_upload_stays_unfinished_until_its_time(sandbox: SandboxProcess):
    assert sandbox.set_media_processing(1.0) == {"processing_seconds": 1.0}
    with sandbox.client() as client:
        upload = _upload(client)
        uploaded = time.monotonic()
        assert upload.status_code == 202, upload.text
        media = upload.json()
        assert (media["url"], media["preview_url"]) == (None, None)
        assert media["description"] == "a chart"
        polled = client.get(f"/api/v1/media/{media['id']}")
        assert polled.status_code == 206
        assert polled.json()["id"] == media["id"] and polled.json()["url"] is None
        early = client.post("/api/v1/statuses", json={"status": "hi", "media_ids": [media["id"]]})
        assert early.status_code == 422
        assert early.json() == {"error": NOT_FINISHED}
        assert sandbox.posted() == []
        time.sleep(max(0.0, 1.05 - (time.monotonic() - uploaded)))
        done = client.get(f"/api/v1/media/{media['id']}")
        assert done.status_code == 200
        assert done.json()["url"].endswith("/original.png")
        status = client.post("/api/v1/statuses", json={"status": "hi", "media_ids": [media["id"]]})
        assert status.status_code == 200, status.text
        assert status.json()["media_attachments"][0]["url"] == done.json()["url"]


def test_a_rejected_early_create_releases_its_idempotency_key(sandbox: SandboxProcess):
    sandbox.set_media_processing(0.5)
    with sandbox.client() as client:
        media_id = _upload(client).json()["id"]
        body = {"status": "hi", "media_ids": [media_id]}
        headers = {"Idempotency-Key": "once"}
        assert client.post("/api/v1/statuses", json=body, headers=headers).status_code == 422
        time.sleep(0.6)
        assert client.post("/api/v1/statuses", json=body, headers=headers).status_code == 200
    assert [p["idempotency_key"] for p in sandbox.posted()] == ["once"]


def test_switching_it_off_does_not_finish_uploads_already_made(sandbox: SandboxProcess):
    sandbox.set_media_processing(30)
    with sandbox.client() as client:
        media_id = _upload(client).json()["id"]
        sandbox.set_media_processing(0)
        assert client.get(f"/api/v1/media/{media_id}").status_code == 206
        assert _upload(client).status_code == 200


def test_the_setting_persists_and_reset_restores_startup(tmp_path):
    with SandboxProcess(tmp_path / "sandbox.db") as sandbox:
        sandbox.set_media_processing(2.5)
        sandbox.restart()
        assert sandbox.media_processing() == {"processing_seconds": 2.5}
    with SandboxProcess(tmp_path / "fresh.db", media_processing_seconds=4) as sandbox:
        assert sandbox.media_processing() == {"processing_seconds": 4.0}
        sandbox.set_media_processing(0)
        sandbox.reset()
        assert sandbox.media_processing() == {"processing_seconds": 4.0}


@pytest.mark.parametrize(
    "body",
    [
        {"processing_seconds": -1},
        {"processing_seconds": "2"},
        {"processing_seconds": True},
        {},
        {"processing_seconds": 1, "extra": 1},
        {"processing_seconds": 1e9},
    ],
    ids=str,
)
def test_media_admin_rejects_bad_bodies(sandbox: SandboxProcess, body):
    answer = httpx.post(f"{sandbox.url}/_sandbox/media", json=body)
    assert answer.status_code == 422
    assert sandbox.media_processing() == {"processing_seconds": 0.0}


def test_a_file_from_before_processing_gets_its_column(tmp_path):
    """A sandbox.db written by an earlier version (no `ready_at_ms`) opens and works."""
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE media (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,"
        " status_id INTEGER, position INTEGER NOT NULL DEFAULT 0, mime TEXT NOT NULL,"
        " ext TEXT NOT NULL, data BLOB NOT NULL, description TEXT, width INTEGER,"
        " height INTEGER, created_at_ms INTEGER NOT NULL)"
    )
    old.execute(
        "INSERT INTO media(id, account_id, mime, ext, data, created_at_ms)"
        " VALUES (1, 1, 'image/png', 'png', x'00', 0)"
    )
    old.commit()
    old.close()
    db = Database(path)
    try:
        record = Statuses(db).media(1)
        assert record is not None and record.ready_at_ms is None and record.processed(0)
    finally:
        db.close()
