"""Run retention: Dagster 1.13 keeps every run and its event log until someone deletes it
(its `retention:` setting covers schedule and sensor ticks only), and the state store keeps
each run's step outputs for re-executing it. This op deletes both once a run has been
finished for longer than SOCIAL_RUN_RETENTION_DAYS.
"""

from datetime import UTC, datetime

from dagster import DagsterRunStatus, OpExecutionContext, RunsFilter, op

from social_pipelines.resources import HistoryResource, StateStoreResource

FINISHED = [DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED]
# Runs deleted per query: a long history is deleted in pages, never read at once.
PAGE = 200


@op(tags={"kind": "housekeeping"})
def prune_history(
    context: OpExecutionContext, history: HistoryResource, state_store: StateStoreResource
) -> None:
    """Delete runs (with their event logs and step outputs) finished before the cutoff, and
    any step output stored before it (outputs of runs deleted by hand)."""
    now = datetime.now(UTC)
    cutoff = history.cutoff(now)
    if cutoff is None:
        context.log.info("SOCIAL_RUN_RETENTION_DAYS is 0: every run is kept")
        context.add_output_metadata({"runs_deleted": 0, "outputs_deleted": 0})
        return
    instance = context.instance
    old = RunsFilter(statuses=FINISHED, updated_before=cutoff)
    deleted: list[str] = []
    while records := instance.get_run_records(filters=old, limit=PAGE):
        for record in records:
            instance.delete_run(record.dagster_run.run_id)
            deleted.append(record.dagster_run.run_id)
    outputs = state_store.open().step_outputs
    removed = outputs.delete_runs(deleted) + outputs.delete_before(cutoff)
    context.log.info(
        f"deleted {len(deleted)} run(s) finished before {cutoff:%Y-%m-%d %H:%M} UTC "
        f"(SOCIAL_RUN_RETENTION_DAYS={history.run_retention_days:g}) and {removed} step "
        "output(s)"
    )
    context.add_output_metadata(
        {
            "runs_deleted": len(deleted),
            "outputs_deleted": removed,
            "cutoff": f"{cutoff:%Y-%m-%d %H:%M:%S} UTC",
        }
    )
