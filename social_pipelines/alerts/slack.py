"""An alert as a Slack incoming-webhook message: `{"text": ..., "blocks": [...]}`.

`text` is the notification's line (and what clients without blocks show); the blocks are a
header, the reason, the fields that apply, a button to the run, and the alert's key and
time. Slack's limits are kept: a header's plain text at most 150 characters, a section's
text 3,000, at most 10 fields of 2,000 each; `&`, `<` and `>` are escaped in mrkdwn as
Slack asks (otherwise `<...>` reads as a link or a mention).
"""

from __future__ import annotations

from typing import Any

from social_pipelines.alerts.model import Alert, Severity

_ICON = {Severity.ERROR: ":rotating_light:", Severity.WARNING: ":warning:"}
HEADER_LIMIT = 150
TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10


def escape(text: str) -> str:
    """Slack mrkdwn's three control characters, escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fields(alert: Alert) -> list[tuple[str, str]]:
    steps = ", ".join(f"{s.step} ({s.error_class})" for s in alert.failed_steps)
    pairs = [
        ("Job", alert.job),
        ("Partition", alert.partition),
        ("Failed steps" if len(alert.failed_steps) > 1 else "Failed step", steps or None),
        ("Error class", alert.error_class),
        ("Platform", alert.platform),
        ("Account", alert.account),
        ("Post", alert.post_id),
        ("Target", alert.target),
        ("Delivery", alert.delivery_id),
    ]
    return [(name, value) for name, value in pairs if value]


def slack_body(alert: Alert) -> dict[str, Any]:
    """The JSON body an incoming webhook takes."""
    icon = _ICON.get(alert.severity, "")
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(alert.title, HEADER_LIMIT), "emoji": True},
        },
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(escape(alert.reason), TEXT_LIMIT)},
        },
    ]
    fields = _fields(alert)[:MAX_FIELDS]
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _cut(f"*{name}*\n{escape(value)}", FIELD_LIMIT)}
                    for name, value in fields
                ],
            }
        )
    if alert.run_url:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open the run"},
                        "url": alert.run_url,
                    }
                ],
            }
        )
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": escape(
                        f"{alert.kind} · {alert.occurred_at:%Y-%m-%d %H:%M:%S} UTC · {alert.key}"
                    ),
                }
            ],
        }
    )
    text = f"{icon} {alert.title}: {alert.reason}".strip()
    return {"text": _cut(escape(text), TEXT_LIMIT), "blocks": blocks}
