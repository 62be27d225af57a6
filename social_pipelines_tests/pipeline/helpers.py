"""Executing reply_job the way the schedule or the launchpad would."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import DagsterInstance, ExecuteInProcessResult

from social_pipelines.definitions import build_definitions
from social_pipelines.partitions import last_complete_window
from social_pipelines.replies.steps import CampaignReport
from social_pipelines.settings import Settings

SANDBOX_ACCOUNT = """
[accounts.brand]
platform = "mastodon"
instance_url = "${SOCIAL_SANDBOX_URL}"
token_env = "SOCIAL_SANDBOX_TOKEN"
"""


def write_files(directory: Path, *, campaigns: str, accounts: str = SANDBOX_ACCOUNT) -> dict:
    """An accounts file and a campaigns file in `directory`, as Settings fields."""
    accounts_file = directory / "accounts.toml"
    campaigns_file = directory / "campaigns.toml"
    accounts_file.write_text(accounts, encoding="utf-8")
    campaigns_file.write_text(campaigns, encoding="utf-8")
    return {"accounts_file": accounts_file, "campaigns_file": campaigns_file}


def run_reply_job(
    instance: DagsterInstance,
    settings: Settings,
    *,
    partition_key: str | None = None,
    raise_on_error: bool = True,
    **config: Any,
) -> ExecuteInProcessResult:
    return (
        build_definitions(settings)
        .get_job_def("reply_job")
        .execute_in_process(
            instance=instance,
            partition_key=partition_key or last_complete_window(),
            run_config={"ops": {"plan_campaigns": {"config": config}}},
            raise_on_error=raise_on_error,
        )
    )


def reports(result: ExecuteInProcessResult) -> dict[str, CampaignReport]:
    return {report.campaign: report for report in result.output_for_node("summarize")}
