"""The sinks against a real receiver on loopback: the bodies they send, the taxonomy class
of every way a send fails, and the webhook URL (a secret) in no log and no error."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from social_pipelines.alerts import (
    SCHEMA,
    Alert,
    AlertKind,
    FailedStep,
    HttpSink,
    LogSink,
    Severity,
    SlackSink,
    slack_body,
)
from social_pipelines.errors import RateLimited, Rejected, SocialError, Transient
from social_pipelines_tests.webhook_receiver import WebhookReceiver

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSecretToken123"

ALERT = Alert(
    key="run_failed:0b7c",
    kind=AlertKind.RUN_FAILED,
    severity=Severity.ERROR,
    title="reply_job [2026-11-23-04:00] failed at post_replies[c]: Rejected",
    reason="mastodon: rejected (HTTP 422): Validation failed: <Text> & more",
    occurred_at=datetime(2026, 11, 23, 6, 1, 2, tzinfo=UTC),
    job="reply_job",
    run_id="0b7c",
    run_url="http://127.0.0.1:3000/runs/0b7c",
    partition="2026-11-23-04:00",
    failed_steps=(FailedStep("post_replies[c]", "Rejected", "mastodon: rejected"),),
    error_class="Rejected",
)


class _Logs(logging.Handler):
    """Every record of every logger, formatted: what any log shipper would see."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def all_logs():
    handler = _Logs()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(old_level)


def test_the_webhook_gets_the_versioned_payload(receiver: WebhookReceiver) -> None:
    HttpSink("webhook", SecretStr(receiver.url(SECRET_PATH))).send(ALERT)
    [got] = receiver.received
    assert got.path == SECRET_PATH
    assert got.headers["Content-Type"] == "application/json"
    body = got.json()
    assert body == ALERT.payload()
    assert body["schema"] == SCHEMA
    assert body["failed_steps"] == [
        {"step": "post_replies[c]", "error_class": "Rejected", "reason": "mastodon: rejected"}
    ]
    assert Alert.from_payload(body) == ALERT


def test_slack_gets_text_and_blocks_with_its_characters_escaped(
    receiver: WebhookReceiver,
) -> None:
    SlackSink("slack", SecretStr(receiver.url(SECRET_PATH))).send(ALERT)
    body = receiver.received[0].json()
    assert body == slack_body(ALERT)
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(":rotating_light: reply_job [2026-11-23-04:00] failed")
    assert "&lt;Text&gt; &amp; more" in body["text"]
    types = [block["type"] for block in body["blocks"]]
    assert types == ["header", "section", "section", "actions", "context"]
    header = body["blocks"][0]["text"]
    assert header["type"] == "plain_text" and header["text"] == ALERT.title
    fields = [f["text"] for f in body["blocks"][2]["fields"]]
    assert "*Job*\nreply_job" in fields
    assert "*Failed step*\npost_replies[c] (Rejected)" in fields
    assert "*Error class*\nRejected" in fields
    button = body["blocks"][3]["elements"][0]
    assert button["url"] == "http://127.0.0.1:3000/runs/0b7c"


def test_slack_limits_are_kept() -> None:
    long = Alert(
        key="k",
        kind=AlertKind.POST_MISSED,
        severity=Severity.WARNING,
        title="t" * 400,
        reason="r" * 5000,
        occurred_at=ALERT.occurred_at,
    )
    body = slack_body(long)
    assert len(body["blocks"][0]["text"]["text"]) == 150
    assert len(body["blocks"][1]["text"]["text"]) == 3000
    assert len(body["text"]) <= 3000
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]


@pytest.mark.parametrize(
    ("status", "headers", "kind"),
    [
        (500, {}, Transient),
        (503, {}, Transient),
        (429, {"Retry-After": "7"}, RateLimited),
        (404, {}, Rejected),
        (400, {}, Rejected),
    ],
)
def test_every_failed_answer_is_a_taxonomy_error_naming_the_host_only(
    receiver: WebhookReceiver, all_logs: _Logs, status: int, headers: dict, kind: type
) -> None:
    receiver.answer(status, headers=headers)
    with pytest.raises(SocialError) as raised:
        SlackSink("slack", SecretStr(receiver.url(SECRET_PATH))).send(ALERT)
    error = raised.value
    assert type(error) is kind
    assert error.status_code == status
    assert receiver.base_url in str(error)
    if isinstance(error, RateLimited):
        assert error.retry_after == 7
    assert all("Secret" not in text for text in (str(error), error.full_text, *all_logs.lines))


def test_an_unreachable_receiver_is_transient(all_logs: _Logs) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(Transient) as raised:
        HttpSink("webhook", SecretStr(f"http://127.0.0.1:{port}{SECRET_PATH}")).send(ALERT)
    assert "could not be reached" in str(raised.value)
    assert all("Secret" not in text for text in (str(raised.value), *all_logs.lines))


def test_a_receiver_that_never_answers_times_out_as_transient(all_logs: _Logs) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection in the kernel, never answers
        port = silent.getsockname()[1]
        sink = HttpSink("webhook", SecretStr(f"http://127.0.0.1:{port}{SECRET_PATH}"), timeout=0.2)
        with pytest.raises(Transient) as raised:
            sink.send(ALERT)
    assert "no answer within 0.2 s" in str(raised.value)
    assert all("Secret" not in text for text in (str(raised.value), *all_logs.lines))


def test_a_sent_alert_leaves_no_url_in_any_log_nor_in_the_sink_repr(
    receiver: WebhookReceiver, all_logs: _Logs
) -> None:
    sink = HttpSink("webhook", SecretStr(receiver.url(SECRET_PATH)))
    sink.send(ALERT)
    assert receiver.received
    assert "Secret" not in repr(sink)
    assert all("Secret" not in line for line in all_logs.lines)


def test_the_log_sink_writes_the_title_and_the_fields() -> None:
    lines: list[str] = []

    class Log:
        def info(self, msg: str, /) -> None:
            lines.append(msg)

        def warning(self, msg: str, /) -> None:
            lines.append(msg)

    LogSink(Log()).send(ALERT)
    [line] = lines
    assert line.startswith(f"alert [error] {ALERT.title}: ")
    assert '"job": "reply_job"' in line and '"run_url": "http://127.0.0.1:3000/runs/0b7c"' in line
    assert '"platform"' not in line  # null fields say nothing
