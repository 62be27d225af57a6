"""Schedules: what used to be cron entries."""

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from social_pipelines.jobs import prune_history_job, reply_job, token_refresh_job
from social_pipelines.partitions import WINDOW_CRON, last_complete_window
from social_pipelines.resources import PlatformsResource
from social_pipelines.runnable import runnable_campaigns
from social_pipelines.token_upkeep import has_work


@schedule(
    job=reply_job,
    cron_schedule=WINDOW_CRON,  # replaces the crontab line `0 */2 * * *`
    execution_timezone="UTC",
    description="At each tick, answer the two-hour window that just ended; skip "
    "campaigns whose platform circuit is open or whose account needs reconnecting.",
)
def reply_schedule(
    context: ScheduleEvaluationContext, platforms: PlatformsResource
) -> RunRequest | SkipReason:
    key = last_complete_window(context.scheduled_execution_time)
    if key is None:
        return SkipReason("no reply window has ended yet")
    check = runnable_campaigns(platforms.wiring())
    if not check.runnable:
        return SkipReason(check.skip_reason())
    run_config = {}
    if check.blocked or check.reconnect:
        # The others still run; posts the blocked ones miss are found again next window
        # (campaigns look back max_age_hours, far longer than one window).
        context.log.warning(check.skip_reason())
        names = [campaign.name for campaign in check.runnable]
        run_config = {"ops": {"plan_campaigns": {"config": {"campaigns": names}}}}
    return RunRequest(run_key=key, partition_key=key, run_config=run_config)


@schedule(
    job=token_refresh_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes: refresh tokens expiring within the hour, and verify "
    "accounts marked reconnect_needed.",
)
def token_refresh_schedule(
    context: ScheduleEvaluationContext, platforms: PlatformsResource
) -> RunRequest | SkipReason:
    if not has_work(platforms.wiring()):
        return SkipReason("no account holds tokens that expire, and none needs reconnecting")
    return RunRequest(run_key=f"tokens-{context.scheduled_execution_time:%Y%m%dT%H%M}")


@schedule(
    job=prune_history_job,
    cron_schedule="17 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily: delete runs finished more than SOCIAL_RUN_RETENTION_DAYS ago, with "
    "their event logs and step outputs (Dagster has no run retention of its own).",
)
def prune_history_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest(run_key=f"prune-{context.scheduled_execution_time:%Y%m%d}")
