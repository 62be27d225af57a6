"""A run that failed on one machine, re-executed from failure on another: two
`DAGSTER_HOME`s with deploy/dagster.yaml, one PostgreSQL for Dagster's storage and the state
store. The first home is gone before the second re-executes, so nothing it wrote locally
can be read: the succeeded steps' outputs come from the state store (search is made to
fail on the platform meanwhile, so a step searching again would fail the run), and each
post is answered exactly once."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ReexecutionOptions,
    execute_job,
    reconstructable,
)

from social_pipelines.models import DeliveryState
from social_pipelines.partitions import last_complete_window
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import StateStore
from social_pipelines_tests.deploy.helpers import install_profile, production_databases

pytestmark = pytest.mark.postgres

CAMPAIGNS = """
[[campaigns]]
name = "dagster_mentions"
account = "brand"
query = "dagster"
max_replies = 3
blocklist = ["giveaway", "crypto"]

[[campaigns]]
name = "pipeline_questions"
account = "brand"
query = "data pipeline"
max_replies = 3
blocklist = ["giveaway", "crypto"]
"""
# Posting fails at once and for good in the first run (no repeat, no step retry), and the
# 503s do not open the account's circuit, which the second run would find open.
FAIL_FAST = {
    "SOCIAL_POLICIES__MASTODON__RETRY_ATTEMPTS": "1",
    "SOCIAL_POLICIES__MASTODON__OP_RETRIES": "0",
    "SOCIAL_POLICIES__MASTODON__BREAKER_FAIL_MAX": "1000",
}


def _started_steps(instance: DagsterInstance, run_id: str) -> list[str]:
    return sorted(
        str(record.step_key)
        for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
    )


def test_a_failed_run_is_re_executed_from_another_home_without_searching_again(
    postgres_url: str,
    sandbox: SandboxProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from social_pipelines_tests.pipeline.jobs_from_env import reply_job_from_env

    campaigns = tmp_path / "campaigns.toml"
    campaigns.write_text(CAMPAIGNS, encoding="utf-8")
    job = reconstructable(reply_job_from_env)
    first_home = install_profile(tmp_path / "machine_a")
    second_home = install_profile(tmp_path / "machine_b")
    with production_databases(postgres_url) as production:

        def become(home: Path) -> DagsterInstance:
            """This process as a machine whose only configuration is its environment."""
            env = production.env(
                home,
                SOCIAL_SANDBOX_URL=sandbox.url,
                SOCIAL_CAMPAIGNS_FILE=str(campaigns),
                **FAIL_FAST,
            )
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            return DagsterInstance.from_config(str(home))

        # Machine A: search, select and write succeed; every create is refused.
        sandbox.set_faults(error_503=1.0, endpoints=["POST /api/v1/statuses"])
        with (
            become(first_home) as first,
            execute_job(
                job, instance=first, tags={"dagster/partition": last_complete_window()}
            ) as failed,
        ):
            assert not failed.success
            parent = failed.run_id
            assert [e.step_key for e in failed.get_step_failure_events()] == [
                "post_replies[dagster_mentions]",
                "post_replies[pipeline_questions]",
            ]
        assert sandbox.posted() == []
        shutil.rmtree(first_home)  # the machine is gone, with anything it kept locally

        # Machine B: the platform takes posts again but refuses every search now.
        sandbox.set_faults(error_503=1.0, endpoints=["GET /api/v2/search"])
        refused = sandbox.stats()["faults"]["error_503"]
        with become(second_home) as second:
            options = ReexecutionOptions.from_failure(parent, second)
            with execute_job(job, instance=second, reexecution_options=options) as again:
                assert again.success
                assert again.dagster_run.parent_run_id == parent
                started = _started_steps(second, again.run_id)
                loaded = [
                    event.step_key
                    for event in again.all_events
                    if event.event_type == DagsterEventType.LOADED_INPUT
                ]
        searches_refused = sandbox.stats()["faults"]["error_503"] - refused
        sandbox.clear_faults()
        StateStore.close(production.variables["SOCIAL_DATABASE_URL"])  # the runs' store
        store = StateStore(production.state_db)
        try:
            sent = store.ledger.list(states=[DeliveryState.SENT])
        finally:
            store.dispose()

    # Only the failed steps ran again; they read the drafts machine A's steps wrote.
    assert started == [
        "post_replies[dagster_mentions]",
        "post_replies[pipeline_questions]",
        "summarize",
    ]
    assert Counter(loaded)["post_replies[dagster_mentions]"] == 1
    assert searches_refused == 0  # nothing searched again
    posted = sandbox.posted()
    targets = [status["in_reply_to_id"] for status in posted]
    assert len(posted) == 6
    assert len(targets) == len(set(targets))
    assert sorted(record.remote_id for record in sent) == sorted(s["id"] for s in posted)
