"""deploy/dagster.yaml as shipped: Dagster's storage and the state store on a real
PostgreSQL, reached over TCP on 127.0.0.1 the way the profile documents, and `reply_job`
executed by `dagster job execute` in its own process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from social_pipelines.models import DeliveryState
from social_pipelines.partitions import last_complete_window
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import StateStore
from social_pipelines.store.engine import normalise_url
from social_pipelines_tests.deploy.helpers import REPO, clean_env, start_reply_job
from social_pipelines_tests.postgres import fresh_database, loopback_tcp

pytestmark = pytest.mark.postgres


def _scalars(url: str, query: str) -> list:
    engine = sa.create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(query)).scalars())
    finally:
        engine.dispose()


def test_reply_job_runs_on_the_shipped_production_profile(
    postgres_url: str, sandbox: SandboxProcess, tmp_path: Path
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    server = make_url(postgres_url)
    user = server.username or "postgres"
    # The embedded server trusts local connections; a real one checks this.
    password = server.password or "unused-by-trust-auth"
    with (
        fresh_database(postgres_url) as dagster_db,
        fresh_database(postgres_url) as state_db,
        loopback_tcp(postgres_url) as (host, port),
    ):
        state_name = make_url(state_db).database
        env = clean_env(
            DAGSTER_HOME=str(home),
            DAGSTER_PG_HOST=host,
            DAGSTER_PG_PORT=str(port),
            DAGSTER_PG_DB=str(make_url(dagster_db).database),
            DAGSTER_PG_USER=user,
            DAGSTER_PG_PASSWORD=password,
            SOCIAL_DATABASE_URL=f"postgresql://{user}:{password}@{host}:{port}/{state_name}",
            SOCIAL_SANDBOX_URL=sandbox.url,
        )
        process = start_reply_job(last_complete_window(), env, cwd=home)
        output, _ = process.communicate(timeout=180)

        assert process.returncode == 0, output[-6000:]
        # The run is in Dagster's PostgreSQL storage, not in a SQLite file under the home.
        assert _scalars(dagster_db, "SELECT status FROM runs") == ["SUCCESS"]
        assert not (home / "history").exists()
        # Replies reached the platform, once per answered post, each recorded in the ledger
        # on PostgreSQL.
        posted = sandbox.posted()
        assert posted
        targets = [status["in_reply_to_id"] for status in posted]
        assert len(targets) == len(set(targets))
        store = StateStore(state_db)
        try:
            sent = store.ledger.list(states=[DeliveryState.SENT])
        finally:
            store.dispose()
        assert sorted(record.remote_id for record in sent) == sorted(s["id"] for s in posted)
