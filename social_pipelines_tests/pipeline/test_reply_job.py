from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance, RunRequest, UrlMetadataValue, build_schedule_context

from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.store import StateStore
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import (
    SANDBOX_ACCOUNT,
    reports,
    run_reply_job,
    write_files,
)

BLOCKED = ("giveaway", "crypto")


def _posted(sandbox: SandboxProcess) -> list[dict]:
    return sandbox.posted()


def test_first_run_replies_once_to_each_chosen_post(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, settings: Settings
) -> None:
    result = run_reply_job(instance, settings)
    by_campaign = reports(result)
    posted = _posted(demo_sandbox)

    new = sum(report.new for report in by_campaign.values())
    assert new > 0
    assert len(posted) == new
    # Each answered post is answered exactly once, even when both campaigns found it.
    targets = [status["in_reply_to_id"] for status in posted]
    assert len(targets) == len(set(targets))
    assert all(target for target in targets)
    for report in by_campaign.values():
        assert report.count("sent") <= 20  # max_replies of the shipped campaigns
        for reply in report.replies:
            assert reply.url.startswith(demo_sandbox.url)
    # Nobody is answered for a blocklisted post, and the brand never answers itself.
    with httpx.Client(
        base_url=demo_sandbox.url, headers={"Authorization": "Bearer sandbox-token-brand"}
    ) as client:
        for target in targets:
            answered = client.get(f"/api/v1/statuses/{target}").json()
            assert answered["account"]["username"] != "brand"
            assert not any(word in answered["content"].lower() for word in BLOCKED)
    # The summary carries each reply's URL as a URL.
    materialized = [
        event.event_specific_data.metadata
        for event in result.all_events
        if event.step_key == "summarize" and event.event_type_value == "STEP_OUTPUT"
    ]
    urls = {value.url for value in materialized[0].values() if isinstance(value, UrlMetadataValue)}
    assert urls == {status["url"] for status in posted}


def test_second_run_posts_nothing(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, settings: Settings
) -> None:
    first = reports(run_reply_job(instance, settings))
    sent = sum(report.new for report in first.values())
    second = reports(run_reply_job(instance, settings))

    assert sum(report.new for report in second.values()) == 0
    assert sum(report.already_answered for report in second.values()) >= sent
    assert len(_posted(demo_sandbox)) == sent


def test_dry_run_posts_nothing_and_records_nothing(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, settings: Settings
) -> None:
    result = run_reply_job(instance, settings, dry_run=True)
    drafts = sum(report.count("dry_run") for report in reports(result).values())

    assert drafts > 0
    assert _posted(demo_sandbox) == []
    store = StateStore.open(settings.state_store_url)
    assert store.ledger.list() == []


def test_changed_template_never_answers_a_post_twice(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    env: Path,
    settings: Settings,
    make_settings: MakeSettings,
) -> None:
    run_reply_job(instance, settings)
    before = len(_posted(demo_sandbox))
    shipped = settings.campaigns_file.read_text()
    changed = env / "campaigns.toml"
    changed.write_text(shipped.replace("Hi @{author}", "Hello there @{author}"))

    again = reports(run_reply_job(instance, make_settings(campaigns_file=changed)))

    assert sum(report.new for report in again.values()) == 0
    assert len(_posted(demo_sandbox)) == before


def test_run_config_narrows_to_one_campaign_and_caps_replies(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, settings: Settings
) -> None:
    result = run_reply_job(instance, settings, campaigns=["dagster_mentions"], max_replies=2)
    by_campaign = reports(result)

    assert list(by_campaign) == ["dagster_mentions"]
    assert by_campaign["dagster_mentions"].new == 2
    assert len(_posted(demo_sandbox)) == 2


def test_one_failing_account_does_not_block_the_others(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    env: Path,
    settings: Settings,
    make_settings: MakeSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = write_files(
        env,
        accounts=SANDBOX_ACCOUNT
        + """
[accounts.broken]
platform = "mastodon"
instance_url = "${SOCIAL_SANDBOX_URL}"
token_env = "BROKEN_TOKEN"
""",
        campaigns=settings.campaigns_file.read_text()
        + """
[[campaigns]]
name = "broken_account"
account = "broken"
query = "dagster"
""",
    )
    # The token is a credential: it comes from the environment, as in production.
    monkeypatch.setenv("BROKEN_TOKEN", "not-a-valid-token")

    result = run_reply_job(instance, make_settings(**files), raise_on_error=False)

    assert not result.success
    failed = {event.step_key for event in result.all_events if event.is_step_failure}
    assert failed == {"search_posts[broken_account]"}
    assert len(_posted(demo_sandbox)) > 0
    # The failure names the platform's refusal, and never the token.
    messages = " ".join(
        str(event.event_specific_data.error.message)
        for event in result.all_events
        if event.is_step_failure
    )
    assert "not-a-valid-token" not in messages
    assert "access token refused" in messages
    # Refused credentials are not retried: one attempt, no Dagster retries.
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []


def test_bad_campaign_entry_is_reported_and_the_rest_run(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    env: Path,
    settings: Settings,
    make_settings: MakeSettings,
) -> None:
    campaigns = env / "campaigns.toml"
    campaigns.write_text(
        settings.campaigns_file.read_text()
        + '\n[[campaigns]]\nname = "bad one"\naccount = "brand"\nquery = "x"\n'
    )

    result = run_reply_job(instance, make_settings(campaigns_file=campaigns))

    assert set(reports(result)) == {"dagster_mentions", "pipeline_questions"}
    warnings = [
        event.message
        for event in instance.all_logs(result.run_id)
        if event.level >= 30 and event.message and "skipped campaign" in event.message
    ]
    assert any("campaigns[2]" in message and "name" in message for message in warnings)
    # Every planned campaign's output says which entry was refused, where and why.
    outputs = [
        event.event_specific_data.metadata
        for event in result.all_events
        if event.step_key == "plan_campaigns" and event.event_type_value == "STEP_OUTPUT"
    ]
    assert len(outputs) == 2
    for metadata in outputs:
        assert metadata["refused_campaigns"].value == 1
        [refusal] = metadata["refused"].value
        assert refusal["file"] == str(campaigns)
        assert refusal["index"] == 2
        assert refusal["campaign"] == "bad one"
        assert refusal["fields"] == ["name"]


def test_a_run_whose_every_campaign_was_refused_fails_naming_each(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    env: Path,
    make_settings: MakeSettings,
) -> None:
    files = write_files(
        env,
        campaigns='[[campaigns]]\nname = "too_greedy"\naccount = "brand"\nquery = "dagster"\n'
        "max_replies = 1000\n\n"
        '[[campaigns]]\nname = "lost"\naccount = "ghost"\nquery = "dagster"\n',
    )
    campaigns = files["campaigns_file"]

    result = run_reply_job(instance, make_settings(**files), raise_on_error=False)

    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "plan_campaigns"
    data = failure.event_specific_data.user_failure_data
    assert f"every campaign in {campaigns} was refused (2)" in data.description
    assert f"{campaigns}: campaigns[0] (too_greedy): max_replies" in data.description
    assert f"{campaigns}: campaigns[1] (lost): account 'ghost' is not defined" in data.description
    refused = data.metadata["refused"].value
    assert [(r["index"], r["campaign"], r["fields"]) for r in refused] == [
        (0, "too_greedy", ["max_replies"]),
        (1, "lost", ["account"]),
    ]
    assert all(r["file"] == str(campaigns) for r in refused)
    # A person must fix the file: no retry, nothing searched, nothing posted.
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retries == []
    assert not any(e.step_key and e.step_key.startswith("search_posts") for e in result.all_events)
    assert _posted(demo_sandbox) == []


def test_schedule_requests_the_window_that_just_ended(settings: Settings) -> None:
    from datetime import UTC, datetime

    from social_pipelines.definitions import build_resources
    from social_pipelines.schedules import reply_schedule

    resources = {"platforms": build_resources(settings)["platforms"]}
    when = datetime(2026, 11, 23, 10, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=when, resources=resources) as context:
        request = reply_schedule(context)

    assert isinstance(request, RunRequest)
    assert request.partition_key == "2026-11-23-08:00"


def test_dagster_definitions_validate(process_env: dict[str, str]) -> None:
    dagster = Path(sys.executable).with_name("dagster")
    completed = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "social_pipelines.definitions"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=process_env,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
