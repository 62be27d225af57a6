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
from social_pipelines.settings import get_settings
from social_pipelines.store import StateStore


def _resources() -> dict:
    from social_pipelines.definitions import defs

    return {"platforms": defs.resources["platforms"], "state_store": defs.resources["state_store"]}


def _open_circuit(account: str = "brand") -> None:
    from social_pipelines.resources import StateStoreResource

    # The store the settings name, as every run process would open it.
    breaker = StateStoreResource().guards().breaker("mastodon", account)

    def fail() -> None:
        raise Transient("down", platform="mastodon")

    for _ in range(breaker.breaker.fail_max):
        with pytest.raises(Transient):
            breaker.call(fail)
    assert breaker.snapshot().is_open


def test_schedule_skips_while_the_circuit_is_open_and_names_it(env: Path) -> None:
    from social_pipelines.schedules import reply_schedule

    _open_circuit()
    when = datetime(2026, 11, 23, 10, tzinfo=UTC)
    with build_schedule_context(scheduled_execution_time=when, resources=_resources()) as ctx:
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
    demo_sandbox: SandboxProcess, instance: DagsterInstance, env: Path
) -> None:
    from social_pipelines.definitions import defs
    from social_pipelines.sensors import deferred_deliveries_sensor

    store = StateStore.open(get_settings().state_store_url)
    with build_sensor_context(instance=instance, resources=_resources()) as ctx:
        assert isinstance(deferred_deliveries_sensor(ctx), SkipReason)

    wanted = _deferred_reply(demo_sandbox, store)
    with build_sensor_context(instance=instance, resources=_resources()) as ctx:
        request = deferred_deliveries_sensor(ctx)
    assert isinstance(request, RunRequest)

    result = defs.get_job_def("redeliver_job").execute_in_process(instance=instance)
    assert result.success
    record = store.ledger.get(wanted)
    assert record.state == DeliveryState.SENT
    [posted] = demo_sandbox.posted()
    assert posted["id"] == record.remote_id and posted["in_reply_to_id"] == record.subject

    with build_sensor_context(instance=instance, resources=_resources()) as ctx:
        assert isinstance(deferred_deliveries_sensor(ctx), SkipReason)
