"""deploy/dagster.yaml as shipped, with a running `dagster-daemon` on one PostgreSQL for
Dagster's storage and the state store: reply runs submitted to the queue with `dagster job
launch`, publish runs launched by the due-posts sensor from a content calendar, all posting
as one account whose rate limit (on the platform, and in our policy) is low enough that the
runs must share it.

Asserted: the queue took the reply runs one at a time (the profile's tag limit), two publish
runs posted to the one account at the same time, every post and reply is on the platform
exactly once, and the platform answered no request with a 429.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    QueuedRunCoordinator,
    RunRecord,
)

from bench._daemon import Daemon
from social_pipelines.models import DeliveryState
from social_pipelines.partitions import last_complete_window
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import StateStore
from social_pipelines_tests.deploy.helpers import BIN, REPO, install_profile, production_databases

pytestmark = pytest.mark.postgres

# The platform's limit for each account, and ours (PostgreSQL buckets every run shares).
LIMIT, WINDOW = 6, 2.0
POSTS = 10
POLICY = {"mastodon": {"buckets": {"account": [{"limit": LIMIT, "seconds": WINDOW}]}}}
CAMPAIGNS = """
[[campaigns]]
name = "dagster_mentions"
account = "brand"
query = "dagster"
max_replies = 4
blocklist = ["giveaway", "crypto"]
"""
# From the daemon's start: long enough for it, its code server and the run workers to start
# on a busy machine, so both publish runs are waiting for the posts' time and post to
# `brand` together.
LEAD = timedelta(seconds=30)
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def _calendar(directory: Path, at: datetime) -> int:
    """POSTS posts to brand alone and POSTS to brand and brand_news, all at `at`: the
    sensor launches one run per set of target accounts, so two runs post as brand. Enough
    that each run's sends as brand span several rate windows (at least POSTS / LIMIT *
    WINDOW seconds), so the two overlap even when a busy machine starts one a second or
    two after the other. Returns how many statuses they make."""
    stamp = at.isoformat()
    posts = [
        {"id": f"solo-{i}", "at": stamp, "to": ["brand"], "text": f"Solo post {i}"}
        for i in range(POSTS)
    ] + [
        {"id": f"both-{i}", "at": stamp, "to": ["brand", "brand_news"], "text": f"Both {i}"}
        for i in range(POSTS)
    ]
    directory.mkdir()
    (directory / "posts.json").write_text(json.dumps(posts), encoding="utf-8")
    return POSTS + POSTS * 2


def _launch_reply_run(window: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            str(BIN / "dagster"),
            "job",
            "launch",
            "-w",
            str(REPO / "workspace.yaml"),
            "-j",
            "reply_job",
            "--tags",
            json.dumps({"dagster/partition": window}),
        ],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_runs(
    instance: DagsterInstance, daemon: Daemon, *, replies: int, publishes: int, timeout: float
) -> list[RunRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = instance.get_run_records()
        jobs = Counter(record.dagster_run.job_name for record in records)
        if (
            jobs["reply_job"] >= replies
            and jobs["publish_job"] >= publishes
            and all(record.dagster_run.status in FINISHED for record in records)
        ):
            return records
        if daemon.proc is None or daemon.proc.poll() is not None:
            raise AssertionError(f"the daemon exited:\n{daemon.log()[-4000:]}")
        time.sleep(0.5)
    raise AssertionError(
        "runs not finished in time: "
        + ", ".join(f"{r.dagster_run.job_name} {r.dagster_run.status}" for r in records)
        + f"\n{daemon.log()[-4000:]}"
    )


def _window(record: RunRecord) -> tuple[float, float]:
    assert record.start_time is not None and record.end_time is not None
    return record.start_time, record.end_time


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_runs_through_the_daemon_share_one_account_without_duplicates_or_429s(
    postgres_url: str,
    sandbox: SandboxProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    began = time.monotonic()
    sandbox.set_rate_limit(enabled=True, limit=LIMIT, window_seconds=WINDOW)
    campaigns = tmp_path / "campaigns.toml"
    campaigns.write_text(CAMPAIGNS, encoding="utf-8")
    home = install_profile(tmp_path / "dagster_home")
    # The last two windows: one reply run each, launched together.
    now = datetime.now(UTC)
    windows = [str(last_complete_window(now - timedelta(hours=2))), str(last_complete_window(now))]
    with production_databases(postgres_url) as production:
        env = production.env(
            home,
            SOCIAL_SANDBOX_URL=sandbox.url,
            SOCIAL_CAMPAIGNS_FILE=str(campaigns),
            SOCIAL_CALENDAR_DIR=str(tmp_path / "calendar"),
            SOCIAL_POLICIES=json.dumps(POLICY),
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        # Dagster's storage initialised once, before several processes use it.
        with DagsterInstance.from_config(str(home)) as instance:
            assert isinstance(instance.run_coordinator, QueuedRunCoordinator)
            expected_publishes = _calendar(tmp_path / "calendar", datetime.now(UTC) + LEAD)
            with Daemon(env, tmp_path / "daemon.log") as daemon:
                launches = [_launch_reply_run(window, env) for window in windows]
                for launch in launches:
                    output, _ = launch.communicate(timeout=120)
                    assert launch.returncode == 0, output[-4000:]
                records = _wait_for_runs(instance, daemon, replies=2, publishes=2, timeout=120)
            queued = {
                record.dagster_run.run_id
                for record in records
                if instance.all_logs(
                    record.dagster_run.run_id, of_type=DagsterEventType.RUN_ENQUEUED
                )
            }
        StateStore.close(production.variables["SOCIAL_DATABASE_URL"])
        store = StateStore(production.state_db)
        try:
            sent = store.ledger.list(states=[DeliveryState.SENT])
            unsettled = [
                record for record in store.ledger.list() if record.state != DeliveryState.SENT
            ]
        finally:
            store.dispose()
    stats = sandbox.stats()
    posted = sandbox.posted()
    took = time.monotonic() - began

    by_job: dict[str, list[RunRecord]] = {}
    for record in records:
        by_job.setdefault(record.dagster_run.job_name, []).append(record)
    t0 = min(r.create_timestamp.timestamp() for r in records)
    for record in sorted(records, key=lambda r: r.start_time or 0):
        start, end = _window(record)
        print(
            f"{record.dagster_run.job_name:12} {record.dagster_run.status.value:8} "
            f"start {start - t0:5.1f} end {end - t0:5.1f}"
        )
    replies = [s for s in posted if s["in_reply_to_id"]]
    publishes = [s for s in posted if not s["in_reply_to_id"]]
    print(
        f"daemon test: {len(replies)} replies, {len(publishes)} publishes, "
        f"{stats['requests']} requests, {stats['violations']} violations, {took:.1f} s"
    )

    assert all(r.dagster_run.status == DagsterRunStatus.SUCCESS for r in records), [
        (r.dagster_run.job_name, r.dagster_run.status) for r in records
    ]
    # Every run went through the queue; the reply runs one after the other.
    assert queued == {record.dagster_run.run_id for record in records}
    first, second = (_window(r) for r in by_job["reply_job"])
    assert not _overlap(first, second)
    # Two publish runs posted as brand at the same time, sharing its budget.
    brand = {
        run_id: [
            d.sent_at.timestamp()
            for d in sent
            if d.run_id == run_id and d.account == "brand" and d.sent_at
        ]
        for run_id in {r.dagster_run.run_id for r in by_job["publish_job"]}
    }
    spans = [(min(times), max(times)) for times in brand.values() if times]
    assert len(spans) == 2 and _overlap(*spans), brand
    # Exactly once, and within the limit.
    assert stats["violations"] == 0
    assert unsettled == []
    assert replies and len({s["in_reply_to_id"] for s in replies}) == len(replies)
    assert len(publishes) == expected_publishes
    assert len({(s["account"], s["text"]) for s in publishes}) == expected_publishes
    assert sorted(d.remote_id for d in sent) == sorted(s["id"] for s in posted)
