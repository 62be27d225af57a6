"""A run process that gets SIGTERM lets go of the delivery in hand and records it, instead
of holding it until its lease runs out (the SIGKILL counterpart: test_killed_run.py).

A reply run's process on a persistent instance is caught with a create in flight: the
sandbox has made the status and holds its answer (`timeout_after`). SIGTERM to that
process alone (what a run launcher or `make dev` sends): Dagster raises an interrupt in the
step, the deliverer records the delivery as unknown, says so in the run's event log, and
the process exits. Nothing is left `sending` with a live lease, and the next run
reconciles it and posts the rest: every post answered exactly once.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

from social_pipelines.models import DeliveryState
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.chaos.harness import (
    AUTHORS,
    Account,
    CampaignSpec,
    compute_verdict,
    dagster_instance,
    make_world,
    reply_window_keys,
    run_driver_job,
    start_job,
    wait_until,
)

BRAND = Account("brand", "brand")
# The create's answer is held this long after the status is made: the signal lands inside.
HELD_ANSWER = 20.0


def test_a_terminated_run_records_the_delivery_in_hand_and_the_next_posts_it_once(
    tmp_path: Path,
) -> None:
    with SandboxProcess(tmp_path / "sandbox.db", rate_limit_enabled=False) as sandbox:
        world = make_world(
            tmp_path,
            sandbox,
            [BRAND],
            [CampaignSpec("terminated", BRAND.name, "sigterm")],
            http_timeout=HELD_ANSWER + 10,
            policy={
                "quota_per_hour": None,
                "quota_per_day": None,
                "reconcile_settle_seconds": 0.2,
            },
        )
        seeded = sandbox.seed(
            [
                {"author": AUTHORS[i], "text": f"sigterm question {i}", "age_minutes": 300}
                for i in range(3)
            ]
        )["statuses"]
        sandbox.set_faults(
            timeout_after=1.0, timeout_delay=HELD_ANSWER, endpoints=["POST /api/v1/statuses"]
        )
        window = reply_window_keys()[0]
        before = sandbox.stats()["statuses_created"]
        proc, run = start_job(world, "reply_job", partition=window)
        ledger = world.store().ledger

        def create_in_flight() -> bool:
            sending = ledger.list(states=[DeliveryState.SENDING])
            return bool(sending) and sandbox.stats()["statuses_created"] > before

        try:
            assert wait_until(create_in_flight, timeout=90, interval=0.05), "never posted"
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)  # it stops at once, not when the held answer comes
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert proc.returncode != 0

        now = datetime.now(UTC)
        mine = [r for r in ledger.list() if r.run_id == run.run_id]
        assert mine and not [
            r
            for r in mine
            if r.state == DeliveryState.SENDING and r.lease_until and r.lease_until >= now
        ], "the terminated run still holds a claim"
        (in_hand,) = [r for r in mine if r.state == DeliveryState.UNKNOWN]
        assert in_hand.lease_until is None and in_hand.error_kind == "outcome_unknown"
        with dagster_instance(world) as instance:
            said = [record.user_message for record in instance.all_logs(run.run_id)]
        assert any("create of mastodon" in m and "recorded as unknown" in m for m in said), said

        sandbox.clear_faults()
        again = run_driver_job(world, "reply_job", partition=window)
        assert again.returncode == 0, (world.logs / "002-job-reply_job.err").read_text()
        verdict = compute_verdict(world, {BRAND.name: set(seeded)})
    assert verdict.clean, verdict.problems()
    assert verdict.states["sent"] == len(seeded)
