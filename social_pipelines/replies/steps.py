"""What flows between the reply job's steps, as plain values (no Dagster here)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from social_pipelines.campaigns import Campaign
from social_pipelines.delivery import DeliveryReport, DeliveryResult, Outcome
from social_pipelines.models import Draft, Identity, SearchResult, SocialPost


class _Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CampaignPlan(_Step):
    """One campaign in one two-hour window, with the run's overrides already applied."""

    campaign: Campaign
    window_start: datetime
    window_end: datetime
    dry_run: bool = False


class Found(_Step):
    plan: CampaignPlan
    identity: Identity
    posts: list[SocialPost]
    search: SearchResult | None = None


class Selected(_Step):
    plan: CampaignPlan
    identity: Identity
    candidates: list[SocialPost]
    skipped: dict[str, int] = Field(default_factory=dict)
    found: int = 0


class Drafted(_Step):
    plan: CampaignPlan
    drafts: list[Draft]
    skipped: dict[str, int] = Field(default_factory=dict)
    found: int = 0


class PostedReply(_Step):
    """One reply's delivery, with what a person reads it by."""

    result: DeliveryResult
    in_reply_to_url: str = ""
    text: str = ""

    @property
    def delivery_id(self) -> str:
        return self.result.delivery_id

    @property
    def outcome(self) -> Outcome:
        return self.result.outcome

    @property
    def url(self) -> str:
        return self.result.url

    @property
    def error(self) -> str:
        return self.result.error


class CampaignReport(_Step):
    campaign: str
    account: str
    dry_run: bool
    found: int
    replies: list[PostedReply]
    skipped: dict[str, int]

    @property
    def deliveries(self) -> DeliveryReport:
        return DeliveryReport(tuple(reply.result for reply in self.replies))

    def count(self, *outcomes: Outcome) -> int:
        return self.deliveries.count(*outcomes)

    @property
    def new(self) -> int:
        return self.deliveries.new

    @property
    def already_answered(self) -> int:
        return self.skipped.get("already_answered", 0) + self.count(Outcome.ALREADY_SENT)
