"""Alerts: the events people must hear about, recorded once and sent to every sink.

Plain Python (the sensors in `alert_sensors.py` are the thin Dagster layer):

- `model`: `Alert` and its JSON payload (schema `social_pipelines.alert/1`, README "Alerts");
- `run_failure`: a failed run as an alert (job, partition, failed steps, error class);
- `detect`: circuits opened, accounts to reconnect, posts missed, deliveries dead,
  quotas used up, found in the state store tick after tick, each once;
- `sinks`: the generic JSON webhook, Slack's incoming webhook (`slack`), the event log;
- `service`: `Alerter`, recording alerts and delivering them with backoff and rate limits.

The alert outbox itself (one row per event, delivery state per sink) is `store/alerts.py`;
`StateStore.alerts.undelivered()` lists what no sink has taken.
"""

from social_pipelines.alerts.detect import Detection, detect
from social_pipelines.alerts.model import SCHEMA, Alert, AlertKind, FailedStep, Severity, run_url
from social_pipelines.alerts.run_failure import (
    ErrorFacts,
    ErrorLink,
    RunFailure,
    run_failed_alert,
    run_failed_key,
)
from social_pipelines.alerts.service import AlertConfig, Alerter, DeliveryPass, backoff
from social_pipelines.alerts.sinks import HttpSink, LogSink, SlackSink, host_of
from social_pipelines.alerts.slack import slack_body

__all__ = [
    "SCHEMA",
    "Alert",
    "AlertConfig",
    "AlertKind",
    "Alerter",
    "DeliveryPass",
    "Detection",
    "ErrorFacts",
    "ErrorLink",
    "FailedStep",
    "HttpSink",
    "LogSink",
    "RunFailure",
    "Severity",
    "SlackSink",
    "backoff",
    "detect",
    "host_of",
    "run_failed_alert",
    "run_failed_key",
    "run_url",
    "slack_body",
]
