"""Recording alerts once and delivering them to every sink, whatever the sinks do.

- `record`: one row per event (its key), with a pending delivery for each configured sink,
  or for the event log when none is configured.
- `deliver`: for each sink, claim its next due alert (one process wins each), send it,
  record the outcome. A sink that fails is tried again later with exponential backoff and
  jitter; its other alerts wait for a later pass (a dead receiver costs one request a
  pass, not one per alert). A sink's rate limit holds back what exceeds it, never drops
  it. A pass has a time budget, so a sensor tick always ends in time. Nothing a sink does
  raises out of here: its errors are recorded, kept, and reported in the pass's lines.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import SecretStr

from social_pipelines.alerts.model import Alert
from social_pipelines.alerts.sinks import (
    DEFAULT_TIMEOUT,
    LOG_SINK,
    HttpSink,
    LogSink,
    Sink,
    SlackSink,
)
from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import RateLimited
from social_pipelines.log import Log
from social_pipelines.store.alerts import AlertOutbox

WEBHOOK = "webhook"
SLACK = "slack"
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"
DEFAULT_RATE_PER_MINUTE = 10
# A claim outlives the slowest send (the sink's timeout) by far; a process that dies
# sending leaves the alert to be sent again after it (at least once, never lost).
CLAIM_LEASE = timedelta(seconds=120)
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
PASS_BUDGET_SECONDS = 20.0


def backoff(attempt: int, *, rng: Callable[[float, float], float] = random.uniform) -> timedelta:
    """The wait after failed attempt `attempt` (1, 2, ...): exponential from 30 s, capped
    at an hour, with "equal" jitter (half fixed, half random) so that sensor processes
    retrying the same receiver spread apart. tenacity's waits compute this inside its own
    retry loop (they take its call state); here it is one number stored in a row."""
    ceiling = min(BACKOFF_MAX.total_seconds(), BACKOFF_FIRST.total_seconds() * 2 ** (attempt - 1))
    return timedelta(seconds=ceiling / 2 + rng(0.0, ceiling / 2))


@dataclass(frozen=True)
class AlertConfig:
    """The sinks (webhook URLs are secrets), the UI the alerts link to, the rate limit."""

    webhook_url: SecretStr | None = field(default=None, repr=False)
    slack_webhook_url: SecretStr | None = field(default=None, repr=False)
    ui_base_url: str = DEFAULT_UI_BASE_URL
    rate_per_minute: int = DEFAULT_RATE_PER_MINUTE
    timeout: float = DEFAULT_TIMEOUT

    def http_sinks(self) -> list[HttpSink]:
        sinks: list[HttpSink] = []
        if self.webhook_url and self.webhook_url.get_secret_value():
            sinks.append(HttpSink(WEBHOOK, self.webhook_url, self.rate_per_minute, self.timeout))
        if self.slack_webhook_url and self.slack_webhook_url.get_secret_value():
            sinks.append(
                SlackSink(SLACK, self.slack_webhook_url, self.rate_per_minute, self.timeout)
            )
        return sinks

    def sink_names(self) -> list[str]:
        """Where a new alert goes: every configured sink, or the event log."""
        return [sink.name for sink in self.http_sinks()] or [LOG_SINK]


@dataclass
class DeliveryPass:
    """What one pass did, sink by sink, as lines a sensor logs."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # rate limits and the time budget
    waiting: list[str] = field(default_factory=list)  # backing off, or no longer configured

    def lines(self) -> list[str]:
        return self.sent + self.failed + self.held + self.waiting

    def problems(self) -> list[str]:
        return self.failed + self.held + self.waiting

    def summary(self) -> str:
        return (
            f"{len(self.sent)} alert(s) sent"
            + (f", {len(self.failed)} failed" if self.failed else "")
            + (f"; {'; '.join(self.held + self.waiting)}" if self.held or self.waiting else "")
        )


class Alerter:
    """Alerts recorded in the state store and delivered to the configured sinks."""

    def __init__(
        self,
        outbox: AlertOutbox,
        config: AlertConfig,
        *,
        clock: Clock = utcnow,
        owner: str | None = None,
        budget_seconds: float = PASS_BUDGET_SECONDS,
    ) -> None:
        self.outbox = outbox
        self.config = config
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex
        self.budget_seconds = budget_seconds

    def record(self, alerts: Iterable[Alert]) -> list[Alert]:
        """Record each alert once (its run linked in the UI); returns those new now."""
        linked = {alert.key: alert.linked(self.config.ui_base_url) for alert in alerts}
        recorded = self.outbox.record(
            [alert.row() for alert in linked.values()], self.config.sink_names()
        )
        return [linked[key] for key in recorded]

    def sinks(self, log: Log) -> list[Sink]:
        """The configured sinks, and the event log: alerts recorded while no sink was
        configured are delivered there even once one is."""
        return [*self.config.http_sinks(), LogSink(log)]

    def deliver(self, log: Log) -> DeliveryPass:
        """Send what is due to every sink, within the pass's time budget."""
        report = DeliveryPass()
        deadline = time.monotonic() + self.budget_seconds
        sinks = self.sinks(log)
        for sink in sinks:
            self._deliver_to(sink, report, deadline)
        self._report_unconfigured({sink.name for sink in sinks}, report)
        return report

    def _deliver_to(self, sink: Sink, report: DeliveryPass, deadline: float) -> None:
        while True:
            if time.monotonic() >= deadline:
                count, _ = self.outbox.waiting(sink.name)
                if count:
                    report.held.append(
                        f"{sink.name}: this pass's {self.budget_seconds:g} s are used up; "
                        f"{count} alert(s) wait for the next tick"
                    )
                return
            claim = self.outbox.claim_next(
                sink.name, self.owner, lease=CLAIM_LEASE, rate_per_minute=sink.rate_per_minute
            )
            if claim.alert is None:
                if claim.held_by_rate:
                    frees = claim.rate_frees_at or self.clock()
                    report.held.append(
                        f"{sink.name}: rate limit of {sink.rate_per_minute} alerts a minute "
                        f"reached; {claim.held_by_rate} alert(s) wait (never dropped), sent "
                        f"from {frees:%H:%M:%S} UTC on"
                    )
                else:
                    self._report_backing_off(sink.name, report)
                return
            alert = Alert.from_row(claim.alert)
            try:
                sink.send(alert)
            except Exception as error:
                # A failing sink never fails the caller (a sensor tick): whatever it raised,
                # a receiver's answer or a bug in a sink, is recorded, kept and retried.
                self._failed(sink.name, alert, claim.attempt, error, report)
                return  # the sink is failing: its other alerts wait for a later pass
            self.outbox.record_sent(alert.key, sink.name, self.owner)
            report.sent.append(f"{sink.name}: sent {alert.key} ({alert.title})")

    def _failed(
        self, sink: str, alert: Alert, attempt: int, error: Exception, report: DeliveryPass
    ) -> None:
        wait = backoff(attempt)
        if isinstance(error, RateLimited) and error.retry_after:
            wait = max(wait, timedelta(seconds=error.retry_after))
        next_at: datetime = self.clock() + wait
        self.outbox.record_failed(
            alert.key,
            sink,
            self.owner,
            error_class=type(error).__name__,
            error=str(error),
            next_attempt_at=next_at,
        )
        report.failed.append(
            f"{sink}: {alert.key} not delivered (attempt {attempt}, {type(error).__name__}: "
            f"{error}); kept, next attempt at {next_at:%Y-%m-%d %H:%M:%S} UTC"
        )

    def _report_backing_off(self, sink: str, report: DeliveryPass) -> None:
        count, next_at = self.outbox.waiting(sink)
        if count and next_at is not None:
            report.waiting.append(
                f"{sink}: {count} alert(s) undelivered, next attempt at "
                f"{next_at:%Y-%m-%d %H:%M:%S} UTC"
            )

    def _report_unconfigured(self, configured: set[str], report: DeliveryPass) -> None:
        for sink in (WEBHOOK, SLACK):
            if sink in configured:
                continue
            count, _ = self.outbox.waiting(sink)
            if count:
                report.waiting.append(
                    f"{sink}: {count} alert(s) recorded for it wait, but it is not configured "
                    "any more; they stay undelivered until it is"
                )
