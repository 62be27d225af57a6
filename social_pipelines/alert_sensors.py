"""The alert sensors: the thin Dagster layer over `alerts/`.

`alert_on_run_failure` records one alert per failed run of this code location and sends
it at once; `alerts_sensor` finds the other events in the state store (circuits opened,
accounts to reconnect, posts missed, deliveries dead, quotas used up) and delivers every
alert still due, with backoff and each sink's rate limit. Both run by default and neither
fails because a sink does: what a sink could not take is kept, retried, and logged.

`alert_on_run_failure` is its own sensor, not part of `release_failed_run_claims`: freeing
a dead run's claims is on the exactly-once path and must never wait behind a slow webhook,
and each run-failure sensor keeps its own cursor, so one failing cannot hold the other.
"""

from datetime import UTC, datetime
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SensorResult,
    run_failure_sensor,
    sensor,
)

from social_pipelines.alerts import (
    DeliveryPass,
    ErrorFacts,
    ErrorLink,
    RunFailure,
    detect,
    run_failed_alert,
)
from social_pipelines.clock import utcnow
from social_pipelines.log import Log
from social_pipelines.resources import AlertsResource

# How often the alerts sensor looks for events and retries what is due.
ALERTS_INTERVAL = 30


def _chain(error: Any) -> tuple[ErrorLink, ...]:
    """A serialised error and its causes, outermost first."""
    links: list[ErrorLink] = []
    while error is not None and len(links) < 10:
        links.append(ErrorLink(cls_name=error.cls_name or "", message=error.message or ""))
        error = error.cause or error.context
    return tuple(links)


def _text(metadata: dict[str, Any], name: str) -> str | None:
    value = metadata.get(name)
    value = getattr(value, "value", value)
    return str(value) if value else None


def _reasons(metadata: dict[str, Any]) -> tuple[str, ...]:
    value = metadata.get("reasons")
    value = getattr(value, "value", value)  # a JsonMetadataValue's list
    return tuple(str(line) for line in value) if isinstance(value, list) else ()


def _step_facts(data: Any) -> ErrorFacts:
    """What a step failure says: its error chain, a `Failure`'s description and the
    error class our ops put in its metadata."""
    user = data.user_failure_data
    metadata = dict(user.metadata or {}) if user is not None else {}
    return ErrorFacts(
        chain=_chain(data.error),
        description=user.description if user is not None else None,
        error_class=_text(metadata, "error_class"),
        error_kind=_text(metadata, "error_kind"),
        reasons=_reasons(metadata),
    )


def _run_failure(context: RunFailureSensorContext) -> RunFailure:
    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record is not None else None
    steps = [
        (event.step_key or "?", _step_facts(event.step_failure_data))
        for event in context.get_step_failure_events()
    ]
    run_error = getattr(context.failure_event.event_specific_data, "error", None)
    return RunFailure(
        job=run.job_name,
        run_id=run.run_id,
        occurred_at=datetime.fromtimestamp(ended, UTC) if ended else utcnow(),
        partition=run.tags.get("dagster/partition"),
        steps=steps,
        run_error=ErrorFacts(chain=_chain(run_error)),
        run_message=context.failure_event.message or "",
    )


def _log_pass(log: Log, report: DeliveryPass) -> None:
    for line in report.sent:
        log.info(line)
    for line in report.problems():
        log.warning(line)


@run_failure_sensor(
    name="alert_on_run_failure",
    monitor_all_code_locations=False,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Alert once per failed run of this code location (job, partition, failed "
    "steps, error class and reason, a link to the run) to the configured sinks, or to "
    "this sensor's log when none is configured.",
)
def alert_on_run_failure(context: RunFailureSensorContext, alerts: AlertsResource) -> None:
    alerter = alerts.alerter()
    alert = run_failed_alert(_run_failure(context))
    if alerter.record([alert]):
        context.log.info(f"alert recorded: {alert.title}")
    else:
        context.log.info(f"alert {alert.key} was recorded before; not recorded again")
    _log_pass(context.log, alerter.deliver(context.log))


@sensor(
    name="alerts_sensor",
    minimum_interval_seconds=ALERTS_INTERVAL,
    default_status=DefaultSensorStatus.RUNNING,
    description="Alert when a circuit opens, an account needs reconnecting, a post is "
    "missed or dead-lettered, or a posting quota is used up (each event once), and "
    "deliver every alert still due, with backoff and each sink's rate limit.",
)
def alerts_sensor(context: SensorEvaluationContext, alerts: AlertsResource) -> SensorResult:
    store = alerts.state_store.open()
    found = detect(store.events, context.cursor, now=utcnow())
    for note in found.notes:
        context.log.warning(note)
    alerter = alerts.alerter()
    recorded = alerter.record(found.alerts)
    for alert in recorded:
        context.log.info(f"alert recorded: [{alert.kind}] {alert.title}")
    report = alerter.deliver(context.log)
    _log_pass(context.log, report)
    undelivered = store.alerts.undelivered_count()
    if undelivered:
        context.log.warning(
            f"{undelivered} alert deliveries not taken by their sink yet (kept; "
            "`StateStore.alerts.undelivered()`, and doctor, list them)"
        )
    summary = (
        f"{len(recorded)} new alert(s); {report.summary()}"
        + (f"; {undelivered} undelivered" if undelivered else "")
        + (f"; {len(found.notes)} scan limit(s) reached" if found.notes else "")
    )
    return SensorResult(skip_reason=summary, cursor=found.cursor)
