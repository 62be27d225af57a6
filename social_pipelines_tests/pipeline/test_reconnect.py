"""A refused token, end to end on the sandbox: the Mastodon account is marked at once, its
campaigns and targets are held with the reason (schedule, sensors, runs, `accounts check`),
and the next `token_refresh_job` clears the mark once the platform takes the token again."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import DagsterInstance, SkipReason, build_schedule_context
from pydantic import SecretStr

from social_pipelines.cli import main
from social_pipelines.definitions import build_definitions, build_resources
from social_pipelines.settings import Settings
from social_pipelines.wiring import wire_settings
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import reports, run_reply_job, write_files

REVOKED = "revoked-token-value-4471"
CAMPAIGNS = """
[[campaigns]]
name = "dagster_help"
account = "brand"
query = "dagster"
max_replies = 2
"""


def _cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings, token: str | None) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    monkeypatch.setenv("SOCIAL_SANDBOX_URL", settings.sandbox_url)
    monkeypatch.setenv("SOCIAL_DATABASE_URL", settings.state_store_url)
    monkeypatch.setenv("SOCIAL_ACCOUNTS_FILE", str(settings.accounts_file))
    monkeypatch.setenv("SOCIAL_CAMPAIGNS_FILE", str(settings.campaigns_file))
    if token is None:
        monkeypatch.delenv("SOCIAL_SANDBOX_TOKEN", raising=False)
    else:
        monkeypatch.setenv("SOCIAL_SANDBOX_TOKEN", token)


def test_a_refused_token_holds_the_account_until_the_refresh_job_sees_it_accepted(
    make_settings: MakeSettings,
    env: Path,
    instance: DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = write_files(env, campaigns=CAMPAIGNS)
    revoked = make_settings(sandbox_token=SecretStr(REVOKED), **files)
    failed = run_reply_job(instance, revoked, raise_on_error=False)
    assert not failed.success
    [row] = wire_settings(revoked).tokens.marked()
    assert (row.platform, row.account) == ("mastodon", "brand")
    assert "access token refused" in (row.reason or "")

    # The schedule says why it starts nothing; the next run holds the campaign.
    with build_schedule_context(
        scheduled_execution_time=datetime(2026, 11, 23, 10, tzinfo=UTC),
        resources={
            k: v for k, v in build_resources(revoked).items() if k in ("platforms", "state_store")
        },
    ) as context:
        from social_pipelines.schedules import reply_schedule

        skipped = reply_schedule(context)
    assert isinstance(skipped, SkipReason)
    assert "reconnect needed: brand" in (skipped.skip_message or "")

    # `accounts check` shows it and fails; no token value anywhere in what it prints.
    _cli_env(monkeypatch, revoked, REVOKED)
    assert main(["accounts", "check"]) == 1
    out = capsys.readouterr()
    assert "reconnect_needed" in out.out and REVOKED not in out.out + out.err

    # The token works again (replaced): the refresh job verifies and clears the mark.
    monkeypatch.delenv("SOCIAL_SANDBOX_TOKEN")
    good = make_settings(**files)
    _cli_env(monkeypatch, good, None)
    refreshed = (
        build_definitions(good)
        .get_job_def("token_refresh_job")
        .execute_in_process(instance=instance)
    )
    assert refreshed.success
    assert wire_settings(good).tokens.marked() == []

    posted = reports(run_reply_job(instance, good))["dagster_help"]
    assert posted.new == 2

    assert main(["accounts", "check", "--json"]) == 0
    checked = json.loads(capsys.readouterr().out)
    [brand] = checked["accounts"]
    assert brand["state"] == "ok" and brand["token_expiry"] == "does not expire"
    assert brand["identity"].startswith("brand")
