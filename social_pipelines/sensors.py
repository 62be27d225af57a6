"""Sensors: the polling loops these pipelines used to run by hand.

The redelivery and claim sensors only heal what earlier runs left (deferred or unsettled
deliveries, a dead run's claims). The due-posts sensor publishes what people scheduled: a
post in the outbox is already an instruction to publish it at its time, so it runs by
default too. The reply schedule, which starts new work nobody asked for post by post,
stays off until a person turns it on.
"""

import hashlib
from datetime import timedelta

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from social_pipelines.errors import ConfigError
from social_pipelines.jobs import publish_job, redeliver_job
from social_pipelines.ops.publish import DISPATCH_LEASE
from social_pipelines.publishing.dispatch import due_runs
from social_pipelines.resources import PlatformsResource, StateStoreResource
from social_pipelines.runnable import held_accounts, runnable_campaigns
from social_pipelines.wiring import Wiring


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
    wiring = platforms.wiring()
    check = runnable_campaigns(wiring)
    marks = held_accounts(wiring)
    held = check.held_accounts | set(marks)
    if held and all(record.account in held for record in due):
        reasons = check.skip_reason() or "; ".join(sorted(set(marks.values())))
        return SkipReason(f"{len(due)} due, but {reasons}")
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


# The sensor looks every SENSOR_INTERVAL seconds and launches a run for posts due within the
# lead, so that the run (a few seconds to start) is waiting when each post's time comes.
SENSOR_INTERVAL = 15
LEAD = timedelta(seconds=60)


@sensor(
    job=publish_job,
    minimum_interval_seconds=SENSOR_INTERVAL,
    default_status=DefaultSensorStatus.RUNNING,
    description="Sync the content calendar, mark posts found too late as missed, and launch "
    "publish_job runs for posts falling due (a little before their time).",
)
def due_posts_sensor(
    context: SensorEvaluationContext,
    state_store: StateStoreResource,
    platforms: PlatformsResource,
) -> SensorResult:
    wiring = platforms.wiring()
    lines = _sync_calendar(wiring)
    # What the calendar says is logged when it changes, not at every tick.
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
    if lines and digest != (context.cursor or ""):
        for line in lines:
            if line.startswith(("problem", "refused", "calendar not synced")):
                context.log.warning(line)
            else:
                context.log.info(line)
    dispatch = due_runs(
        state_store.open().outbox,
        lead=LEAD,
        max_lateness=wiring.max_lateness,
        lease=DISPATCH_LEASE,
        held=held_accounts(wiring),
    )
    for missed in dispatch.missed:
        context.log.warning(missed)
    for held in dispatch.held:
        context.log.warning(held)
    if dispatch.capped:
        context.log.warning("more posts are due than one evaluation takes; the next tick goes on")
    requests = [
        RunRequest(
            run_key=run.key,
            run_config={"ops": {"plan_publishes": {"config": {"post_ids": run.post_ids}}}},
            tags={"social/posts": str(len(run.post_ids))},
        )
        for run in dispatch.runs
    ]
    return SensorResult(
        run_requests=requests,
        skip_reason=None if requests else dispatch.skip_reason(),
        cursor=digest,
    )


def _sync_calendar(wiring: Wiring) -> list[str]:
    """The calendar synced, as lines to log; a calendar (or accounts file) that cannot be
    used is reported and never stops posts already in the outbox from going out."""
    try:
        synced = wiring.sync_calendar()
    except ConfigError as error:
        return [f"calendar not synced: {error}"]
    return synced.lines() if synced is not None else []
