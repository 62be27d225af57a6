"""The schedule and the sensor decide from shared state: open circuits, deliveries due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from social_pipelines.errors import Transient
from social_pipelines.models import DeliveryKind, DeliveryState, Draft, delivery_id
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.store import StateStore
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import write_files


def _resources(settings: Settings) -> dict:
    from social_pipelines.definitions import build_resources

    resources = build_resources(settings)
    return {"platforms": resources["platforms"], "state_store": resources["state_store"]}


def _open_circuit(settings: Settings, account: str = "brand") -> None:
    from social_pipelines.wiring import wire_settings

    # The store the settings name, as every run process would open it.
    breaker = wire_settings(settings).connector.breaker("mastodon", account)

    def fail() -> None:
        raise Transient("down", platform="mastodon")

    for _ in range(breaker.breaker.fail_max):
        with pytest.raises(Transient):
            breaker.call(fail)
    assert breaker.snapshot().is_open


def test_schedule_skips_while_the_circuit_is_open_and_names_it(settings: Settings) -> None:
    from social_pipelines.schedules import reply_schedule

    _open_circuit(settings)
    when = datetime(2026, 11, 23, 10, tzinfo=UTC)
    with build_schedule_context(
        scheduled_execution_time=when, resources=_resources(settings)
    ) as ctx:
        result = reply_schedule(ctx)

    assert isinstance(result, SkipReason)
    assert "mastodon:brand" in result.skip_message
    assert "open until" in result.skip_message


def _deferred_reply(demo_sandbox: SandboxProcess, store: StateStore) -> str:
    """A reply an earlier run planned and deferred (its target found by search then)."""
    target = demo_sandbox.seed([{"key": "late", "author": "etl_ed", "text": "dagster help?"}])
    subject = target["statuses"][0]
    key = "109265603788800000@sandbox.local"
    draft = Draft(
        delivery_id=delivery_id("mastodon", key, DeliveryKind.REPLY, subject),
        campaign="dagster_mentions",
        account="brand",
        platform="mastodon",
        account_key=key,
        subject=subject,
        text="@etl_ed happy to help!",
    )
    store.ledger.plan(draft)
    store.ledger.defer(draft.delivery_id, datetime.now(UTC) - timedelta(seconds=1), "quota")
    return draft.delivery_id


def test_sensor_launches_redelivery_when_deliveries_fall_due(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, settings: Settings
) -> None:
    from social_pipelines.definitions import build_definitions

    defs = build_definitions(settings)
    from social_pipelines.sensors import deferred_deliveries_sensor

    store = StateStore.open(settings.state_store_url)
    with build_sensor_context(instance=instance, resources=_resources(settings)) as ctx:
        assert isinstance(deferred_deliveries_sensor(ctx), SkipReason)

    wanted = _deferred_reply(demo_sandbox, store)
    with build_sensor_context(instance=instance, resources=_resources(settings)) as ctx:
        request = deferred_deliveries_sensor(ctx)
    assert isinstance(request, RunRequest)

    result = defs.get_job_def("redeliver_job").execute_in_process(instance=instance)
    assert result.success
    record = store.ledger.get(wanted)
    assert record.state == DeliveryState.SENT
    [posted] = demo_sandbox.posted()
    assert posted["id"] == record.remote_id and posted["in_reply_to_id"] == record.subject

    with build_sensor_context(instance=instance, resources=_resources(settings)) as ctx:
        assert isinstance(deferred_deliveries_sensor(ctx), SkipReason)


def test_failed_run_releases_its_claims_for_reconciliation(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    env: Path,
    settings: Settings,
    make_settings: MakeSettings,
) -> None:
    from dagster import DagsterEventType, build_run_status_sensor_context

    from social_pipelines.definitions import build_definitions
    from social_pipelines.sensors import release_failed_run_claims

    # A run that fails: its only campaign's account has no token.
    files = write_files(
        env,
        accounts='[accounts.brand]\nplatform = "mastodon"\ninstance_url = "${SOCIAL_SANDBOX_URL}"\n'
        'token_env = "NO_SUCH_TOKEN"\n',
        campaigns='[[campaigns]]\nname = "c"\naccount = "brand"\nquery = "dagster"\n',
    )
    failed = (
        build_definitions(make_settings(**files))
        .get_job_def("reply_job")
        .execute_in_process(
            instance=instance, partition_key="2026-11-23-04:00", raise_on_error=False
        )
    )
    assert not failed.success
    # Suppose it had claimed a delivery when it died.
    store = StateStore.open(settings.state_store_url)
    wanted = _deferred_reply(demo_sandbox, store)
    claim = store.ledger.claim(wanted, run_id=failed.run_id, lease=timedelta(minutes=10))
    assert store.ledger.claim(wanted, run_id="other", lease=timedelta(minutes=10)).result == (
        "in_flight"
    )

    run = instance.get_run_by_id(failed.run_id)
    failure = next(
        e
        for e in instance.all_logs(failed.run_id)
        if e.dagster_event and e.dagster_event.event_type == DagsterEventType.RUN_FAILURE
    )
    context = build_run_status_sensor_context(
        sensor_name="release_failed_run_claims",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure.dagster_event,
        resources={"state_store": _resources(settings)["state_store"]},
    ).for_run_failure()
    release_failed_run_claims(context)

    retry = store.ledger.claim(wanted, run_id="next", lease=timedelta(minutes=10))
    assert claim.attempt == 1
    assert retry.result == "reconcile"  # looked up on the platform before any resend


def test_the_sensors_run_by_default_and_the_reply_schedule_waits_for_a_person() -> None:
    """The healing sensors, and the due-posts sensor (a post in the outbox is already an
    instruction to publish it at its time); the reply schedule starts work nobody asked for
    post by post, so it waits for a person."""
    from dagster import DefaultScheduleStatus, DefaultSensorStatus

    from social_pipelines.definitions import defs

    sensors = {sensor.name: sensor for sensor in defs.sensors}
    assert set(sensors) == {
        "deferred_deliveries_sensor",
        "due_posts_sensor",
        "release_failed_run_claims",
        "alert_on_run_failure",
        "alerts_sensor",
    }
    for name, sensor in sensors.items():
        assert sensor.default_status == DefaultSensorStatus.RUNNING, name
    schedules = {schedule.name: schedule for schedule in defs.schedules}
    assert set(schedules) == {"reply_schedule", "token_refresh_schedule", "prune_history_schedule"}
    assert schedules["reply_schedule"].default_status == DefaultScheduleStatus.STOPPED
    # Keeping tokens alive posts nothing, and a token left to expire stops every account
    # that holds one: it runs by default (and skips while no account holds tokens).
    refresh = schedules["token_refresh_schedule"]
    assert refresh.default_status == DefaultScheduleStatus.RUNNING
    assert refresh.cron_schedule == "*/15 * * * *"
    # Deleting runs past their retention posts nothing either: daily, by default.
    prune = schedules["prune_history_schedule"]
    assert prune.default_status == DefaultScheduleStatus.RUNNING
    assert prune.cron_schedule == "17 3 * * *"
