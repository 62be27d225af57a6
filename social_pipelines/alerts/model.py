"""An alert: one event people must hear about, and the JSON every sink is built from.

The payload (`Alert.payload()`) is a versioned, documented format (README "Alerts"): every
field is always present (null when it does not apply), so a receiver can rely on the shape;
a change that removes or retypes a field gets a new `schema` version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from social_pipelines.store.alerts import AlertRow

SCHEMA = "social_pipelines.alert/1"


class AlertKind(StrEnum):
    RUN_FAILED = "run_failed"
    CIRCUIT_OPEN = "circuit_open"
    RECONNECT_NEEDED = "reconnect_needed"
    POST_MISSED = "post_missed"
    DELIVERY_DEAD = "delivery_dead"
    QUOTA_USED_UP = "quota_used_up"


class Severity(StrEnum):
    ERROR = "error"  # a person must act: a run failed, a post will not go out by itself
    WARNING = "warning"  # something is held back and heals by itself, or was let go


@dataclass(frozen=True)
class FailedStep:
    """One step of a failed run: its key, the error class and the reason in one line."""

    step: str
    error_class: str
    reason: str


@dataclass(frozen=True)
class Alert:
    key: str  # the event's identity: one alert per event, whatever retries or ticks
    kind: AlertKind
    severity: Severity
    title: str
    reason: str
    occurred_at: datetime
    job: str | None = None
    run_id: str | None = None
    run_url: str | None = None
    partition: str | None = None
    failed_steps: tuple[FailedStep, ...] = ()
    error_class: str | None = None
    platform: str | None = None
    account: str | None = None
    post_id: str | None = None
    target: str | None = None
    delivery_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The generic JSON webhook's body (schema `social_pipelines.alert/1`)."""
        return {
            "schema": SCHEMA,
            "key": self.key,
            "kind": str(self.kind),
            "severity": str(self.severity),
            "title": self.title,
            "reason": self.reason,
            "occurred_at": _iso(self.occurred_at),
            "job": self.job,
            "run_id": self.run_id,
            "run_url": self.run_url,
            "partition": self.partition,
            "failed_steps": [
                {"step": s.step, "error_class": s.error_class, "reason": s.reason}
                for s in self.failed_steps
            ],
            "error_class": self.error_class,
            "platform": self.platform,
            "account": self.account,
            "post_id": self.post_id,
            "target": self.target,
            "delivery_id": self.delivery_id,
            "details": self.details,
        }

    def to_json(self) -> str:
        return json.dumps(self.payload(), ensure_ascii=False, sort_keys=False)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> Alert:
        return cls(
            key=payload["key"],
            kind=AlertKind(payload["kind"]),
            severity=Severity(payload["severity"]),
            title=payload["title"],
            reason=payload["reason"],
            occurred_at=datetime.fromisoformat(payload["occurred_at"]),
            job=payload.get("job"),
            run_id=payload.get("run_id"),
            run_url=payload.get("run_url"),
            partition=payload.get("partition"),
            failed_steps=tuple(
                FailedStep(s["step"], s["error_class"], s["reason"])
                for s in payload.get("failed_steps") or ()
            ),
            error_class=payload.get("error_class"),
            platform=payload.get("platform"),
            account=payload.get("account"),
            post_id=payload.get("post_id"),
            target=payload.get("target"),
            delivery_id=payload.get("delivery_id"),
            details=dict(payload.get("details") or {}),
        )

    @classmethod
    def from_row(cls, row: AlertRow) -> Alert:
        return cls.from_payload(json.loads(row.payload))

    def row(self) -> AlertRow:
        """As the alert outbox stores it."""
        return AlertRow(
            key=self.key,
            kind=str(self.kind),
            severity=str(self.severity),
            title=self.title,
            payload=self.to_json(),
            occurred_at=self.occurred_at,
        )

    def fields(self) -> dict[str, Any]:
        """The payload's fields that say something (not null, not empty), for a log line."""
        return {
            name: value
            for name, value in self.payload().items()
            if value not in (None, [], {}, "") and name not in ("schema", "title")
        }

    def linked(self, ui_base_url: str) -> Alert:
        """The alert with its run linked in the Dagster UI, when it names a run."""
        if not self.run_id or self.run_url:
            return self
        return replace(self, run_url=run_url(ui_base_url, self.run_id))


def run_url(ui_base_url: str, run_id: str) -> str:
    """A run's page in the Dagster UI (SOCIAL_UI_BASE_URL)."""
    return f"{ui_base_url.rstrip('/')}/runs/{run_id}"


def _iso(moment: datetime) -> str:
    """UTC, ISO 8601 with a Z: what every receiver parses."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
