"""Run retention: prune_history_job deletes runs finished before SOCIAL_RUN_RETENTION_DAYS,
with their event logs and the step outputs the state store kept for them; 0 keeps all."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dagster import DagsterInstance, instance_for_test
from dagster._core.storage.runs.schema import RunsTable

from social_pipelines.definitions import build_definitions
from social_pipelines.settings import Settings
from social_pipelines.store import StateStore

RETENTION_DAYS = 30


def _settings(tmp_path: Path, retention_days: float) -> Settings:
    return Settings(
        _env_file=None,
        dagster_home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'state.db'}",
        run_retention_days=retention_days,
    )


def _publish(instance: DagsterInstance, settings: Settings) -> str:
    """A publish run with nothing due: it finishes at once, its plan stored as an output."""
    result = (
        build_definitions(settings).get_job_def("publish_job").execute_in_process(instance=instance)
    )
    assert result.success
    return result.run_id


def _finished_long_ago(instance: DagsterInstance, run_ids: list[str]) -> None:
    """As if these runs had ended a day more than the retention ago (Dagster's run storage
    stamps a run's last update itself; no API moves it)."""
    storage = instance.run_storage
    with storage.connect() as connection:
        for run_id in run_ids:
            record = instance.get_run_record_by_id(run_id)
            assert record is not None
            connection.execute(
                RunsTable.update()
                .where(RunsTable.c.run_id == run_id)
                .values(
                    update_timestamp=record.update_timestamp - timedelta(days=RETENTION_DAYS + 1)
                )
            )


def _prune(instance: DagsterInstance, settings: Settings) -> str:
    job = build_definitions(settings).get_job_def("prune_history_job")
    result = job.execute_in_process(instance=instance)
    assert result.success
    return result.run_id


def test_runs_finished_before_the_retention_are_deleted_with_their_outputs(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, retention_days=RETENTION_DAYS)
    store = StateStore.open(settings.state_store_url)
    with instance_for_test() as instance:
        old = [_publish(instance, settings)]
        recent = _publish(instance, settings)
        _finished_long_ago(instance, old)
        assert store.step_outputs.run_ids() == {*old, recent}

        pruner = _prune(instance, settings)

        assert {run.run_id for run in instance.get_runs()} == {recent, pruner}
        assert all(not instance.all_logs(run_id) for run_id in old)
        assert store.step_outputs.run_ids() == {recent}


def test_a_retention_of_zero_keeps_every_run(tmp_path: Path) -> None:
    settings = _settings(tmp_path, retention_days=0)
    store = StateStore.open(settings.state_store_url)
    with instance_for_test() as instance:
        kept = _publish(instance, settings)
        pruner = _prune(instance, settings)

        assert {run.run_id for run in instance.get_runs()} == {kept, pruner}
        assert store.step_outputs.run_ids() == {kept}
