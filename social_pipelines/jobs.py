"""Jobs: the reply job, one run per two-hour window, fanned out per campaign; the publish
job, fanned out per target account; the redelivery job; the token refresh job; the job
that deletes old runs."""

from dagster import in_process_executor, job

from social_pipelines.ops.history import prune_history
from social_pipelines.ops.publish import PUBLISH_OPS, plan_publishes
from social_pipelines.ops.redeliver import redeliver_due
from social_pipelines.ops.reply import (
    plan_campaigns,
    post_replies,
    search_posts,
    select_candidates,
    summarize,
    write_replies,
)
from social_pipelines.ops.tokens import refresh_tokens
from social_pipelines.partitions import reply_windows


@job(
    partitions_def=reply_windows,
    # A multiprocess step costs about 2 s to spawn here against 0.07 s in process.
    executor_def=in_process_executor,
    tags={"social/job": "reply"},
    description="Search each campaign's query, pick posts worth answering, reply once.",
)
def reply_job() -> None:
    reports = plan_campaigns().map(
        lambda plan: post_replies(write_replies(select_candidates(search_posts(plan))))
    )
    summarize(reports.collect())


@job(
    executor_def=in_process_executor,
    tags={"social/job": "redeliver"},
    description="Send deliveries that earlier runs deferred or could not settle.",
)
def redeliver_job() -> None:
    redeliver_due()


@job(
    executor_def=in_process_executor,
    tags={"social/job": "publish"},
    description="Publish due posts (or the ones named) to every target once, images "
    "rendered per platform; too-late posts are marked missed, not sent.",
)
def publish_job() -> None:
    planned = plan_publishes()
    for platform, publish in PUBLISH_OPS.items():
        getattr(planned, platform).map(publish)


@job(
    executor_def=in_process_executor,
    tags={"social/job": "token_refresh"},
    description="Refresh every stored token that expires within the hour, and verify the "
    "accounts marked reconnect_needed (an accepted one is cleared).",
)
def token_refresh_job() -> None:
    refresh_tokens()


@job(
    executor_def=in_process_executor,
    tags={"social/job": "prune_history"},
    description="Delete runs finished more than SOCIAL_RUN_RETENTION_DAYS ago, with their "
    "event logs and stored step outputs.",
)
def prune_history_job() -> None:
    prune_history()
