"""A SIGKILLed run's claims are free within about a lease, with no sensor running.

Dagster's default run launcher cannot check a run worker's health, so run monitoring never
marks a SIGKILLed run failed and `release_failed_run_claims` never fires for it: only the
claims' own leases, renewed by a heartbeat while the run is alive, can free them. Here a
reply run is killed mid-posting (a `sending` row of its own in the ledger) and nobody
marks it failed or releases anything; its claims lapse within the lease, and the next run
reconciles and finishes the work exactly once.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from social_pipelines.models import DeliveryState
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.chaos.harness import (
    AUTHORS,
    CLAIM_LEASE_SECONDS,
    Account,
    CampaignSpec,
    compute_verdict,
    make_world,
    reply_window_keys,
    run_driver_job,
    start_job,
    wait_until,
)

LEASE = CLAIM_LEASE_SECONDS  # what make_world gives every driver process
BRAND = Account("brand", "brand")


def test_a_killed_runs_claims_lapse_without_any_sensor(tmp_path: Path) -> None:
    with SandboxProcess(tmp_path / "sandbox.db", rate_limit_enabled=False) as sandbox:
        campaign = CampaignSpec("killed", BRAND.name, "heartbeat")
        world = make_world(
            tmp_path,
            sandbox,
            [BRAND],
            [campaign],
            http_timeout=5.0,
            policy={"quota_per_hour": None, "quota_per_day": None},
        )
        seeded = sandbox.seed(
            [
                {"author": AUTHORS[i % len(AUTHORS)], "text": f"heartbeat {i}", "age_minutes": 300}
                for i in range(8)
            ]
        )["statuses"]
        # Each create takes 0.6 s: the run is caught in the middle of one.
        sandbox.set_faults(latency=0.6, endpoints=["POST /api/v1/statuses"])
        window = reply_window_keys()[0]
        proc, run = start_job(world, "reply_job", partition=window)
        ledger = world.store().ledger

        def mid_posting() -> bool:
            rows = ledger.list(states=[DeliveryState.SENDING, DeliveryState.SENT])
            sent = sum(1 for r in rows if r.state == DeliveryState.SENT)
            return sent >= 2 and any(r.state == DeliveryState.SENDING for r in rows)

        try:
            assert wait_until(mid_posting, timeout=90, interval=0.02), "never reached posting"
            proc.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
        held = [r for r in ledger.list(states=[DeliveryState.SENDING]) if r.run_id == run.run_id]
        assert held, "the killed run held no claim"
        # No sensor, no run-failure event, no release_run: only the lease.
        wanted = {r.delivery_id for r in held}
        assert wait_until(
            lambda: wanted <= {r.delivery_id for r in ledger.due()}, timeout=LEASE + 3
        ), "the killed run's claims were still held"
        freed_after = time.monotonic() - killed_at
        assert freed_after <= LEASE + 2

        sandbox.clear_faults()
        again = run_driver_job(world, "reply_job", partition=window)
        assert again.returncode == 0
        verdict = compute_verdict(world, {BRAND.name: set(seeded)})
    assert verdict.clean, verdict.problems()
    assert verdict.states["sent"] == len(seeded)
