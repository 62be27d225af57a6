"""Evaluating the alert sensors on a real instance, as the daemon would: shared by the
alert tests and the secret test."""

from __future__ import annotations

import logging
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    SensorResult,
    build_run_status_sensor_context,
    build_sensor_context,
)

from social_pipelines.definitions import build_resources
from social_pipelines.settings import Settings


def run_failure_sensor(
    instance: DagsterInstance, settings: Settings, run_id: str, logs: logging.Handler | None = None
) -> None:
    from social_pipelines.alert_sensors import alert_on_run_failure

    failure = next(
        entry
        for entry in instance.all_logs(run_id)
        if entry.dagster_event and entry.dagster_event.event_type == DagsterEventType.RUN_FAILURE
    )
    assert failure.dagster_event is not None
    with build_run_status_sensor_context(
        sensor_name="alert_on_run_failure",
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        dagster_event=failure.dagster_event,
        # The alerts resource nests the state store: resources in a context manager.
        resources={"alerts": build_resources(settings)["alerts"]},
    ).for_run_failure() as context:
        if logs is not None:
            # The sensor's log is Dagster's own logger for the tick, outside `logging`'s tree.
            context.log.addHandler(logs)
        alert_on_run_failure(context)


def alerts_sensor_tick(
    instance: DagsterInstance,
    settings: Settings,
    cursor: str | None,
    logs: logging.Handler | None = None,
) -> Any:
    from social_pipelines.alert_sensors import alerts_sensor

    with build_sensor_context(
        instance=instance, cursor=cursor, resources={"alerts": build_resources(settings)["alerts"]}
    ) as context:
        if logs is not None:
            context.log.addHandler(logs)
        result = alerts_sensor(context)
    assert isinstance(result, SensorResult)
    return result
