"""State survives restarts and SIGKILL; seeding is idempotent; the process wrapper behaves."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from social_pipelines.sandbox.demo_posts import demo_posts
from social_pipelines.sandbox.process import SandboxProcess, SandboxStartError

AUTH = {"Authorization": "Bearer sandbox-token-brand"}


def codes(sandbox: SandboxProcess, count: int) -> list[int]:
    with sandbox.client() as client:
        return [client.get("/api/v1/accounts/verify_credentials").status_code for _ in range(count)]


def test_state_survives_restart_and_kill(tmp_path: Path):
    with SandboxProcess(tmp_path / "state.db", rate_limit=100, rate_window=3600) as sandbox:
        first_url = sandbox.url
        seeded = sandbox.seed([{"key": "s1", "author": "newauthor", "text": "dagster?"}])
        with sandbox.client() as client:
            me = client.get("/api/v1/accounts/verify_credentials").json()
            created = client.post(
                "/api/v1/statuses", data={"status": "kept"}, headers={"Idempotency-Key": "ik"}
            ).json()
        sandbox.set_rate_limit(limit=50)
        sandbox.set_faults(error_500=0.5, seed=7)
        before = codes(sandbox, 10)
        stats_before = sandbox.stats()

        sandbox.restart()
        assert sandbox.url == first_url  # same port when it is free
        after = codes(sandbox, 10)  # the faults are still set
        assert sandbox.stats()["rate_limit"] == {
            "enabled": True,
            "limit": 50,
            "window_seconds": 3600.0,
        }
        faults = sandbox.faults()
        assert faults["error_500"] == 0.5 and faults["seed"] == 7
        stats = sandbox.stats()
        assert stats["statuses_created"] == 1
        assert stats["requests"] == stats_before["requests"] + 10
        assert stats["faults"]["error_500"] == (before + after).count(500) > 0
        sandbox.clear_faults()
        with sandbox.client() as client:
            assert client.get("/api/v1/accounts/verify_credentials").json()["id"] == me["id"]
            again = client.post(
                "/api/v1/statuses", data={"status": "dup"}, headers={"Idempotency-Key": "ik"}
            ).json()
            assert again["id"] == created["id"]
            found = client.get("/api/v2/search", params={"q": "dagster"}).json()["statuses"]
            assert [s["id"] for s in found] == seeded["statuses"]

        sandbox.kill()
        assert not sandbox.running
        sandbox.start()
        assert [p["id"] for p in sandbox.posted()] == [created["id"]]
        assert (
            sandbox.seed([{"key": "s1", "author": "newauthor", "text": "dagster?"}])["created"] == 0
        )


def test_fault_sequence_continues_across_restart(tmp_path: Path):
    with SandboxProcess(tmp_path / "seq.db") as sandbox:
        sandbox.set_faults(error_500=0.5, seed=11)
        split = codes(sandbox, 10)
        sandbox.restart()
        split += codes(sandbox, 10)
        sandbox.set_faults(error_500=0.5, seed=11)  # restarts the sequence from the seed
        assert codes(sandbox, 20) == split


def test_seeding_demo_posts_twice_creates_nothing_new(sandbox: SandboxProcess):
    first = sandbox.seed(demo_posts())
    second = sandbox.seed(demo_posts())
    assert first["created"] == len(demo_posts()["posts"]) and first["skipped"] == 0
    assert second["created"] == 0 and second["skipped"] == first["created"]
    assert second["statuses"] == first["statuses"]
    assert sandbox.posted() == []  # seeds are not "posted"
    found: set[str] = set()
    with sandbox.client() as client:
        for q in ("dagster", '"data pipeline"'):
            statuses = client.get("/api/v2/search", params={"q": q, "limit": 40}).json()
            found |= {status["id"] for status in statuses["statuses"]}
    assert len(found) >= 22


def test_seed_validation_is_atomic(sandbox: SandboxProcess):
    response = httpx.post(
        f"{sandbox.url}/_sandbox/seed",
        json={
            "posts": [
                {"key": "ok", "author": "etl_ed", "text": "fine"},
                {"key": "bad", "author": "not a name", "text": "x"},
            ]
        },
    )
    assert response.status_code == 422
    assert sandbox.seed([{"key": "ok", "author": "etl_ed", "text": "fine"}])["created"] == 1


def test_start_failure_reports_stderr(tmp_path: Path):
    missing_dir = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(SandboxStartError, match="unable to open database"):
        SandboxProcess(missing_dir, startup_timeout=20).start()


def test_restart_moves_to_a_free_port_when_its_own_is_taken(tmp_path: Path):
    with SandboxProcess(tmp_path / "port.db") as sandbox:
        old_port = sandbox.port
        sandbox.stop()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", old_port))
            squatter.listen()
            sandbox.start()
            assert sandbox.port != old_port and sandbox.health()


def test_stop_is_graceful(tmp_path: Path):
    sandbox = SandboxProcess(tmp_path / "stop.db").start()
    assert sandbox.health()
    assert sandbox.stop() == 0
    assert not sandbox.running and not sandbox.health()
    sandbox.close()
