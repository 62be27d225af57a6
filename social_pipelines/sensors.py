"""Sensors: the polling loops these pipelines used to run by hand.

Both only heal what earlier runs left (deferred or unsettled deliveries, a dead run's
claims) and never start new work, so they run by default once a daemon runs. The reply
schedule, which does start new work, stays off until a person turns it on.
"""

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from social_pipelines.jobs import redeliver_job
from social_pipelines.resources import PlatformsResource, StateStoreResource
from social_pipelines.runnable import runnable_campaigns


@sensor(
    job=redeliver_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launch a redelivery run when deferred or unsettled deliveries are due.",
)
def deferred_deliveries_sensor(
    context: SensorEvaluationContext,
    state_store: StateStoreResource,
    platforms: PlatformsResource,
) -> RunRequest | SkipReason:
    due = state_store.open().ledger.due(limit=500)
    if not due:
        upcoming = state_store.open().ledger.next_due_at()
        return SkipReason(
            f"nothing due; next deferred delivery at {upcoming:%Y-%m-%d %H:%M:%S} UTC"
            if upcoming
            else "nothing due"
        )
    check = runnable_campaigns(platforms.wiring())
    open_accounts = {campaign.account for campaign, _ in check.blocked}
    if open_accounts and all(record.account in open_accounts for record in due):
        return SkipReason(f"{len(due)} due, but {check.skip_reason()}")
    newest = max(record.updated_at for record in due)
    return RunRequest(run_key=f"redeliver-{len(due)}-{newest.isoformat()}")


@run_failure_sensor(
    monitor_all_code_locations=False,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="When a run fails (or run monitoring marks a killed run failed), release "
    "its delivery claims so the next run reconciles them instead of waiting out the lease.",
)
def release_failed_run_claims(
    context: RunFailureSensorContext, state_store: StateStoreResource
) -> None:
    released = state_store.open().ledger.release_run(context.dagster_run.run_id)
    if released:
        context.log.warning(
            f"run {context.dagster_run.run_id} failed holding {released} delivery claim(s); "
            "released for reconciliation"
        )
