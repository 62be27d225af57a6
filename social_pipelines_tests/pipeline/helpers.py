"""Executing reply_job the way the schedule or the launchpad would."""

from __future__ import annotations

from typing import Any

from dagster import DagsterInstance, ExecuteInProcessResult

from social_pipelines.partitions import last_complete_window
from social_pipelines.replies.steps import CampaignReport


def run_reply_job(
    instance: DagsterInstance,
    *,
    partition_key: str | None = None,
    raise_on_error: bool = True,
    **config: Any,
) -> ExecuteInProcessResult:
    from social_pipelines.definitions import defs

    return defs.get_job_def("reply_job").execute_in_process(
        instance=instance,
        partition_key=partition_key or last_complete_window(),
        run_config={"ops": {"plan_campaigns": {"config": config}}},
        raise_on_error=raise_on_error,
    )


def reports(result: ExecuteInProcessResult) -> dict[str, CampaignReport]:
    return {report.campaign: report for report in result.output_for_node("summarize")}
