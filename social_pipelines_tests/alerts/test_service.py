"""Recording and delivering alerts against a real receiver, with a clock the test moves:
one send per event and sink, retries with backoff that keep what failed, the rate limit
holding back (never dropping) what exceeds it, and the event log when no sink is set."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from social_pipelines.alerts import Alert, AlertConfig, Alerter, AlertKind, Severity, backoff
from social_pipelines.store.alerts import AlertState
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import START, FakeClock
from social_pipelines_tests.webhook_receiver import WebhookReceiver


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """SQLite only: the SQL these passes run is the alert outbox's, tested on both backends
    in store/test_alerts.py; here it is the passes' decisions."""
    return f"sqlite:///{tmp_path / 'state.db'}"


class Lines:
    """A `Log` that keeps what it is told."""

    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warnings: list[str] = []

    def info(self, msg: str, /) -> None:
        self.infos.append(msg)

    def warning(self, msg: str, /) -> None:
        self.warnings.append(msg)


def _alert(key: str = "run_failed:r1", **changes: object) -> Alert:
    values: dict = {
        "key": key,
        "kind": AlertKind.RUN_FAILED,
        "severity": Severity.ERROR,
        "title": f"reply_job failed ({key})",
        "reason": "why",
        "occurred_at": START,
        "job": "reply_job",
        "run_id": key.rpartition(":")[2],
    }
    return Alert(**(values | changes))


def _alerter(store: StateStore, clock: FakeClock, receiver: WebhookReceiver, **config) -> Alerter:
    settings = {
        "webhook_url": SecretStr(receiver.url("/generic/secret-1")),
        "slack_webhook_url": SecretStr(receiver.url("/slack/secret-2")),
        "ui_base_url": "http://ui.example:3000/",
    } | config
    return Alerter(store.alerts, AlertConfig(**settings), clock=clock)


def test_each_event_is_sent_once_to_each_sink_with_its_run_linked(
    store: StateStore, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    alerter = _alerter(store, clock, receiver)
    [recorded] = alerter.record([_alert()])
    assert recorded.run_url == "http://ui.example:3000/runs/r1"
    assert alerter.record([_alert()]) == []  # the same event again
    report = alerter.deliver(Lines())
    assert len(report.sent) == 2 and not report.problems()
    by_path = {r.path: r.json() for r in receiver.received}
    assert by_path["/generic/secret-1"]["run_url"] == "http://ui.example:3000/runs/r1"
    assert set(by_path["/slack/secret-2"]) == {"text", "blocks"}
    alerter.record([_alert()])
    assert alerter.deliver(Lines()).sent == []
    assert len(receiver.received) == 2
    assert store.alerts.undelivered() == []


def test_a_failing_receiver_is_retried_with_backoff_and_what_failed_is_kept(
    store: StateStore, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    alerter = _alerter(store, clock, receiver, slack_webhook_url=None)
    alerter.record([_alert("run_failed:a"), _alert("run_failed:b")])
    receiver.answer(500, times=2)
    report = alerter.deliver(Lines())
    # One request to a failing receiver per pass: the other alert waits, untried.
    assert len(receiver.received) == 1
    [failed] = report.failed
    assert "Transient" in failed and "kept, next attempt at" in failed
    undelivered = {u.alert.key: u.delivery for u in store.alerts.undelivered()}
    first = undelivered["run_failed:a"]
    assert first.state == AlertState.FAILED and first.attempts == 1
    assert first.last_error_class == "Transient"
    assert "HTTP 500" in (first.last_error or "") and "secret" not in (first.last_error or "")
    wait = first.next_attempt_at - START
    assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)

    # The other alert is tried on the next pass (and fails); the first waits its backoff.
    alerter.deliver(Lines())
    assert [r.json()["key"] for r in receiver.received] == ["run_failed:a", "run_failed:b"]
    clock.advance(seconds=31)
    report = alerter.deliver(Lines())
    assert len(report.sent) == 2
    assert store.alerts.undelivered() == []
    keys = [r.json()["key"] for r in receiver.received]
    assert sorted(keys[2:]) == ["run_failed:a", "run_failed:b"]  # in their backoff's order


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    low = [backoff(n, rng=lambda a, b: a).total_seconds() for n in (1, 2, 3, 9, 20)]
    high = [backoff(n, rng=lambda a, b: b).total_seconds() for n in (1, 2, 3, 9, 20)]
    assert low == [15, 30, 60, 1800, 1800]
    assert high == [30, 60, 120, 3600, 3600]


def test_a_429_waits_at_least_its_retry_after(
    store: StateStore, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    alerter = _alerter(store, clock, receiver, webhook_url=None)
    alerter.record([_alert()])
    receiver.answer(429, headers={"Retry-After": "600"})
    alerter.deliver(Lines())
    [waiting] = store.alerts.undelivered()
    assert waiting.delivery.last_error_class == "RateLimited"
    assert waiting.delivery.next_attempt_at >= START + timedelta(seconds=600)


def test_the_rate_limit_holds_back_the_excess_and_sends_it_later(
    store: StateStore, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    alerter = _alerter(store, clock, receiver, slack_webhook_url=None, rate_per_minute=2)
    alerter.record([_alert(f"run_failed:r{i}") for i in range(5)])
    report = alerter.deliver(Lines())
    assert len(report.sent) == 2
    [held] = report.held
    assert "rate limit of 2 alerts a minute reached; 3 alert(s) wait (never dropped)" in held
    assert store.alerts.undelivered_count() == 3
    clock.advance(seconds=30)
    assert alerter.deliver(Lines()).sent == []  # still the same minute
    clock.advance(seconds=31)
    assert len(alerter.deliver(Lines()).sent) == 2
    clock.advance(seconds=61)
    assert len(alerter.deliver(Lines()).sent) == 1
    assert sorted(r.json()["key"] for r in receiver.received) == [
        f"run_failed:r{i}" for i in range(5)
    ]


def test_without_a_sink_alerts_go_to_the_log_and_count_as_delivered(
    store: StateStore, clock: FakeClock
) -> None:
    alerter = Alerter(store.alerts, AlertConfig(), clock=clock)
    alerter.record([_alert()])
    log = Lines()
    report = alerter.deliver(log)
    [line] = log.warnings
    assert line.startswith("alert [error] reply_job failed (run_failed:r1): ")
    assert '"run_url": "http://127.0.0.1:3000/runs/r1"' in line
    assert report.sent == ["log: sent run_failed:r1 (reply_job failed (run_failed:r1))"]
    [delivery] = store.alerts.deliveries("run_failed:r1")
    assert (delivery.sink, delivery.state) == ("log", AlertState.SENT)


def test_alerts_logged_before_a_sink_was_set_stay_in_the_log_and_a_removed_sink_is_named(
    store: StateStore, clock: FakeClock, receiver: WebhookReceiver
) -> None:
    Alerter(store.alerts, AlertConfig(), clock=clock).record([_alert("run_failed:old")])
    with_sink = _alerter(store, clock, receiver, slack_webhook_url=None)
    with_sink.record([_alert("run_failed:new")])
    log = Lines()
    with_sink.deliver(log)
    assert [r.json()["key"] for r in receiver.received] == ["run_failed:new"]
    assert any("run_failed:old" in line for line in log.warnings)
    # The webhook is unset again: what was recorded for it is named, not forgotten.
    with_sink.record([_alert("run_failed:later")])
    gone = Alerter(store.alerts, AlertConfig(), clock=clock).deliver(Lines())
    assert any("webhook: 1 alert(s) recorded for it wait" in line for line in gone.waiting)


def test_a_sink_that_breaks_never_raises_out_of_a_pass(store: StateStore, clock: FakeClock) -> None:
    # A URL httpx itself refuses: not a receiver's answer, a failure of the sink.
    alerter = Alerter(
        store.alerts, AlertConfig(webhook_url=SecretStr("http://bad host/x")), clock=clock
    )
    alerter.record([_alert()])
    report = alerter.deliver(Lines())
    assert report.failed and report.sent == []
    [kept] = store.alerts.undelivered()
    assert kept.delivery.attempts == 1 and kept.delivery.last_error_class
