"""The alert sensors on a real Dagster instance, with a real webhook receiver on loopback:
a run that really fails (publish_job, a target whose image is broken) gives one alert per
failed run however often the sensor looks, its dead letter one more, a failing receiver
fails nothing and keeps the alert, no sink means the event log, and the webhook URL is a
secret nowhere to be found.

`SOCIAL_TEST_ALERT_CAPTURE=FILE` writes the payloads the receiver got to FILE (the README's
example was captured so).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    DagsterInstance,
)
from pydantic import SecretStr

from social_pipelines.definitions import build_definitions, build_resources
from social_pipelines.models import Post, PostImage
from social_pipelines.settings import Settings
from social_pipelines.store import Origin, StateStore
from social_pipelines.store.alerts import AlertState
from social_pipelines_tests.pipeline.alerting import alerts_sensor_tick, run_failure_sensor
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.webhook_receiver import WebhookReceiver

SECRET_PATH = "/services/T0ALERTS/B0ALERTS/s3cretWebhookToken"
UI = "http://dagster.example:3000"


@pytest.fixture
def alert_settings(make_settings: MakeSettings, receiver: WebhookReceiver) -> Settings:
    return make_settings(
        alert_webhook_url=SecretStr(receiver.url(SECRET_PATH)),
        ui_base_url=UI,
    )


class _AllLogs(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def all_logs() -> Iterator[_AllLogs]:
    """Every record of every logger, Dagster's own (which does not propagate) too."""
    handler = _AllLogs()
    loggers = [logging.getLogger(), logging.getLogger("dagster")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


def _failing_publish(instance: DagsterInstance, settings: Settings, env: Path) -> str:
    """publish_job with one post whose image is not an image: its target is dead and the
    step fails, as it would for a person's broken upload."""
    broken = env / "launch.jpg"
    broken.write_bytes(b"not an image at all")
    post = Post(
        id="launch",
        text="We launched!",
        targets=("brand",),
        at=datetime.now(UTC) - timedelta(seconds=1),
        images=(PostImage(source=str(broken), alt="the product"),),
    )
    StateStore.open(settings.state_store_url).outbox.save(post, origin=Origin.CLI)
    result = (
        build_definitions(settings)
        .get_job_def("publish_job")
        .execute_in_process(instance=instance, raise_on_error=False)
    )
    assert not result.success
    return result.run_id


def _capture(bodies: list[Any]) -> None:
    target = os.environ.get("SOCIAL_TEST_ALERT_CAPTURE")
    if target:
        Path(target).write_text(json.dumps(bodies, indent=2, ensure_ascii=False) + "\n")


def test_one_alert_per_failed_run_and_one_per_dead_letter_however_often_they_look(
    instance: DagsterInstance,
    alert_settings: Settings,
    env: Path,
    receiver: WebhookReceiver,
    all_logs: _AllLogs,
) -> None:
    run_id = _failing_publish(instance, alert_settings, env)
    run_failure_sensor(instance, alert_settings, run_id, all_logs)
    run_failure_sensor(instance, alert_settings, run_id, all_logs)  # again: nothing new
    [run_failed] = receiver.bodies()
    assert run_failed["schema"] == "social_pipelines.alert/1"
    assert run_failed["key"] == f"run_failed:{run_id}"
    assert run_failed["kind"] == "run_failed" and run_failed["severity"] == "error"
    assert run_failed["job"] == "publish_job"
    assert run_failed["run_url"] == f"{UI}/runs/{run_id}"
    [step] = run_failed["failed_steps"]
    assert step["step"] == "publish_mastodon[brand]"
    assert run_failed["error_class"] == step["error_class"]
    assert run_failed["error_class"] in ("Rejected", "MediaError", "ConfigError")
    assert "1 dead" in run_failed["reason"]
    assert "; dead: launch/brand: " in run_failed["reason"]  # the first dead one's reason
    assert "launch.jpg': not an image" in run_failed["reason"]

    first = alerts_sensor_tick(instance, alert_settings, None, all_logs)
    second = alerts_sensor_tick(instance, alert_settings, first.cursor, all_logs)
    bodies = receiver.bodies()
    assert len(bodies) == 2
    dead = bodies[1]
    assert dead["kind"] == "delivery_dead"
    assert (dead["post_id"], dead["target"], dead["account"]) == ("launch", "brand", "brand")
    assert dead["run_url"] == f"{UI}/runs/{run_id}"
    assert "launch.jpg" in dead["reason"]
    assert second.skip_reason is not None
    assert "0 new alert(s)" in second.skip_reason.skip_message
    _capture(bodies)

    # The secret URL is in no log, no event of the run, no payload.
    events = [str(entry) for entry in instance.all_logs(run_id)]
    secret = SECRET_PATH.rsplit("/", 1)[1]
    assert not [line for line in all_logs.lines + events if secret in line]
    assert all(secret not in json.dumps(body) for body in bodies)
    assert secret not in repr(build_resources(alert_settings)["alerts"])


def test_a_receiver_answering_500_fails_nothing_and_the_alert_is_kept(
    instance: DagsterInstance,
    alert_settings: Settings,
    env: Path,
    receiver: WebhookReceiver,
    all_logs: _AllLogs,
) -> None:
    run_id = _failing_publish(instance, alert_settings, env)
    receiver.answer(500, times=10)
    run_failure_sensor(instance, alert_settings, run_id, all_logs)  # does not raise
    result = alerts_sensor_tick(instance, alert_settings, None, all_logs)  # nor does this
    store = StateStore.open(alert_settings.state_store_url)
    kept = {u.alert.key: u.delivery for u in store.alerts.undelivered()}
    run_alert = kept[f"run_failed:{run_id}"]
    assert run_alert.state == AlertState.FAILED and run_alert.last_error_class == "Transient"
    assert run_alert.next_attempt_at > datetime.now(UTC)
    # Said in the sensor's log and in its tick's message.
    assert any("not delivered" in line and "kept, next attempt" in line for line in all_logs.lines)
    assert "undelivered" in result.skip_reason.skip_message
    # Nothing is sent again before its next attempt: one request per alert so far.
    tried = len(receiver.received)
    alerts_sensor_tick(instance, alert_settings, result.cursor, all_logs)
    assert len(receiver.received) == tried
    assert all(SECRET_PATH not in line for line in all_logs.lines)


def test_without_a_sink_the_alert_goes_to_the_event_log(
    instance: DagsterInstance, settings: Settings, env: Path, all_logs: _AllLogs
) -> None:
    run_id = _failing_publish(instance, settings, env)
    run_failure_sensor(instance, settings, run_id, all_logs)
    [line] = [w for w in all_logs.lines if w.startswith("alert [error] publish_job failed")]
    assert f'"run_id": "{run_id}"' in line and '"failed_steps"' in line
    store = StateStore.open(settings.state_store_url)
    [delivery] = store.alerts.deliveries(f"run_failed:{run_id}")
    assert (delivery.sink, delivery.state) == ("log", AlertState.SENT)


def test_webhook_urls_reach_dagster_by_variable_name_only(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import EnvVar

    url = f"https://hooks.slack.example{SECRET_PATH}"
    monkeypatch.setenv("SOCIAL_ALERT_SLACK_WEBHOOK_URL", url)
    settings = make_settings(alert_slack_webhook_url=SecretStr(url))
    alerts = build_resources(settings)["alerts"]
    assert alerts.slack_webhook_url == EnvVar("SOCIAL_ALERT_SLACK_WEBHOOK_URL")
    assert SECRET_PATH not in repr(alerts)


def test_the_alert_sensors_run_by_default_over_this_code_location() -> None:
    from dagster import DefaultSensorStatus

    from social_pipelines.alert_sensors import ALERTS_INTERVAL, alert_on_run_failure, alerts_sensor

    assert alert_on_run_failure.default_status == DefaultSensorStatus.RUNNING
    assert alerts_sensor.default_status == DefaultSensorStatus.RUNNING
    assert 30 <= ALERTS_INTERVAL <= 60
    assert alerts_sensor.minimum_interval_seconds == ALERTS_INTERVAL
