"""What flows between the publish job's steps, as plain values (no Dagster here).

They stay small (ids and times, never images): a step re-reads each post from the outbox
right before sending it, so what a step was handed can never be staler than the outbox.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from social_pipelines.delivery import DeliveryReport, DeliveryResult, Outcome
from social_pipelines.models import Value as _Step


class PublishPlan(BaseModel):
    """What the plan decided (ids only): posts handed on, missed, and skipped."""

    post_ids: list[str] = Field(default_factory=list)
    missed: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(default_factory=list)


class TargetItem(_Step):
    post_id: str
    target: str
    at: datetime


class AccountBatch(_Step):
    """Every target one account publishes in this run, in time order."""

    account: str
    platform: str
    items: list[TargetItem]
    dry_run: bool = False
    force_late: bool = False


class PublishedTarget(_Step):
    post_id: str
    target: str
    result: DeliveryResult
    text: str = ""

    @property
    def outcome(self) -> Outcome:
        return self.result.outcome

    @property
    def url(self) -> str:
        return self.result.url


class AccountReport(_Step):
    account: str
    platform: str
    targets: list[PublishedTarget]

    @property
    def deliveries(self) -> DeliveryReport:
        return DeliveryReport(tuple(target.result for target in self.targets))
