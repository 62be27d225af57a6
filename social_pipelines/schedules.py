"""Schedules: what used to be cron entries."""


from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from social_pipelines.jobs import reply_job
from social_pipelines.partitions import WINDOW_CRON, reply_windows


@schedule(
    job=reply_job,
    cron_schedule=WINDOW_CRON,  # replaces the crontab line `0 */2 * * *`
    execution_timezone="UTC",
    description="At each tick, answer the two-hour window that just ended.",
)
def reply_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    key = reply_windows.get_last_partition_key(current_time=context.scheduled_execution_time)
    if key is None:
        return SkipReason("no reply window has ended yet")
    return RunRequest(run_key=key, partition_key=key)
