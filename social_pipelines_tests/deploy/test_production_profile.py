"""deploy/dagster.yaml as shipped: Dagster's storage and the state store on a real
PostgreSQL, reached over TCP on 127.0.0.1 the way the profile documents, and `reply_job`
executed by `dagster job execute` in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_pipelines.models import DeliveryState
from social_pipelines.partitions import last_complete_window
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import StateStore
from social_pipelines_tests.deploy.helpers import (
    install_profile,
    production_databases,
    scalars,
    start_reply_job,
)

pytestmark = pytest.mark.postgres


def test_reply_job_runs_on_the_shipped_production_profile(
    postgres_url: str, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    home = install_profile(tmp_path / "dagster_home")
    with production_databases(postgres_url) as production:
        env = production.env(home, SOCIAL_SANDBOX_URL=sandbox.url)
        process = start_reply_job(last_complete_window(), env, cwd=home)
        output, _ = process.communicate(timeout=180)

        assert process.returncode == 0, output[-6000:]
        # The run is in Dagster's PostgreSQL storage, not in a SQLite file under the home.
        dagster_db = production.dagster_db
        assert scalars(dagster_db, "SELECT status FROM runs") == ["SUCCESS"]
        assert not (home / "history").exists()
        # `dagster job execute` runs in its own process, outside the run queue: the run was
        # never queued, so the queue's tag limits did not apply to it (README, Production).
        events = scalars(dagster_db, "SELECT DISTINCT dagster_event_type FROM event_logs")
        assert "PIPELINE_START" in events
        assert "PIPELINE_ENQUEUED" not in events
        # Its step outputs are in the state store, not under the home (where only the
        # compute logs of the run are).
        kept = {path.relative_to(home).parts[2] for path in (home / "storage").glob("*/*")}
        assert kept == {"compute_logs"}
        assert scalars(production.state_db, "SELECT count(*) FROM step_outputs")[0] > 0
        # Replies reached the platform, once per answered post, each recorded in the ledger
        # on PostgreSQL.
        posted = sandbox.posted()
        assert posted
        targets = [status["in_reply_to_id"] for status in posted]
        assert len(targets) == len(set(targets))
        store = StateStore(production.state_db)
        try:
            sent = store.ledger.list(states=[DeliveryState.SENT])
        finally:
            store.dispose()
        assert sorted(record.remote_id for record in sent) == sorted(s["id"] for s in posted)
