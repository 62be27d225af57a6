"""With the circuit open, nothing reaches the platform before the reset time; after it, one
trial call from one process decides.

The sandbox answers 503 to every request. Worker processes (2 short, 4 long) post through
the guarded platform (breaker -> limiter -> adapter, tenacity retries), all sharing one
breaker through the state store. The sandbox's own request counter is the witness.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store.schema import breaker_events, circuit_breakers
from social_pipelines_tests.chaos.harness import (
    Account,
    Worker,
    World,
    long_mode,
    make_world,
    wait_until,
)

FAIL_MAX = 3
RESET = 4.0
TRIAL_LATENCY = 1.0  # the successful trial is slow: the others try while it is in flight
POLICY = {
    "breaker_fail_max": FAIL_MAX,
    "breaker_reset_seconds": RESET,
    "retry_attempts": 4,
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 5.0,
    "quota_per_hour": None,
    "quota_per_day": None,
    "buckets": {"account": [{"limit": 1000, "seconds": 1}]},
    "endpoints": {"*": ["account"]},
}
BRAND = Account("brand", "brand")
NAME = "mastodon:brand"


def _row(world: World) -> sa.Row:
    with world.store().engine.connect() as connection:
        return connection.execute(
            sa.select(circuit_breakers).where(circuit_breakers.c.name == NAME)
        ).one()


def _events(world: World, since: datetime) -> list[sa.Row]:
    with world.store().engine.connect() as connection:
        return list(
            connection.execute(
                sa.select(breaker_events)
                .where(breaker_events.c.name == NAME, breaker_events.c.at >= since)
                .order_by(breaker_events.c.id)
            )
        )


def _requests(sandbox: SandboxProcess) -> int:
    return sandbox.stats()["requests"]


def _all_at(workers: list[Worker], at: float, **command: float) -> list[list[dict]]:
    for worker in workers:
        worker.send({"at": at, **command})
    return [worker.read(timeout=60)["calls"] for worker in workers]


def _hold_off(workers: list[Worker], until: float) -> list[dict]:
    """Every worker tries every 0.1 s until `until`; returns every call made."""
    results = _all_at(workers, time.time() + 0.05, calls=1000, interval=0.1, until=until)
    return [call for calls in results for call in calls]


@pytest.mark.chaos
def test_open_breaker_keeps_every_process_away_until_one_trial_decides(tmp_path: Path) -> None:
    processes = 4 if long_mode() else 2
    with SandboxProcess(tmp_path / "sandbox.db", rate_limit_enabled=False) as sandbox:
        world = make_world(tmp_path, sandbox, [BRAND], [], http_timeout=5.0, policy=POLICY)
        workers = [Worker(world, "breaker", "--account", BRAND.name) for _ in range(processes)]
        try:
            sandbox.set_faults(error_503=1.0)

            # 1. One process trips the breaker: FAIL_MAX requests, then nothing.
            before = _requests(sandbox)
            [trip] = _all_at(workers[:1], 0, calls=1)
            assert [call["outcome"] for call in trip] == ["circuit_open"]
            assert _requests(sandbox) - before == FAIL_MAX
            row = _row(world)
            assert row.state == "open"
            reset_at = row.opened_at + timedelta(seconds=RESET)

            # 2. Until the reset time, no process reaches the sandbox.
            before = _requests(sandbox)
            held = _hold_off(workers, reset_at.timestamp() - 0.3)
            assert len(held) >= 2 * processes
            assert {call["outcome"] for call in held} == {"circuit_open"}
            assert _requests(sandbox) == before

            # 3. After it, every process tries at once: one trial request, which fails
            #    (still 503), and the circuit is open again for another period.
            wait_until(lambda: datetime.now(UTC) > reset_at, RESET + 1)
            since = datetime.now(UTC)
            before = _requests(sandbox)
            trial = _all_at(workers, time.time() + 0.2, calls=1)
            assert _requests(sandbox) - before == 1
            assert {call["outcome"] for calls in trial for call in calls} <= {
                "circuit_open",
                "transient",
            }
            moves = [(e.from_state, e.to_state) for e in _events(world, since)]
            assert moves == [("open", "half-open"), ("half-open", "open")], moves
            row = _row(world)
            assert row.state == "open" and row.opened_at > reset_at
            reset_at = row.opened_at + timedelta(seconds=RESET)

            before = _requests(sandbox)
            held = _hold_off(workers, reset_at.timestamp() - 0.3)
            assert {call["outcome"] for call in held} == {"circuit_open"}
            assert _requests(sandbox) == before

            # 4. The platform is well again (but slow): after the reset, one trial goes
            #    through while the others are still refused; it closes the circuit.
            sandbox.set_faults(latency=TRIAL_LATENCY)
            wait_until(lambda: datetime.now(UTC) > reset_at, RESET + 1)
            since = datetime.now(UTC)
            posted_before = len(sandbox.posted())
            trial = _all_at(workers, time.time() + 0.2, calls=1)
            outcomes = sorted(call["outcome"] for calls in trial for call in calls)
            moves = [(e.from_state, e.to_state, e.at) for e in _events(world, since)]
            assert [m[:2] for m in moves] == [("open", "half-open"), ("half-open", "closed")]
            closed_at = moves[-1][2]
            created = [
                datetime.fromisoformat(s["created_at"].replace("Z", "+00:00"))
                for s in sandbox.posted()[posted_before:]
            ]
            assert sum(stamp <= closed_at for stamp in created) == 1, (created, closed_at)
            assert "ok" in outcomes
            print(f"\nbreaker trial outcomes with the platform back: {outcomes}")

            # 5. Closed: traffic flows from every process.
            sandbox.clear_faults()
            before = _requests(sandbox)
            flowing = _all_at(workers, time.time() + 0.1, calls=3, interval=0.05)
            assert {call["outcome"] for calls in flowing for call in calls} == {"ok"}
            assert _requests(sandbox) - before == 3 * processes
            assert _row(world).state == "closed"
        finally:
            for worker in workers:
                worker.close()
