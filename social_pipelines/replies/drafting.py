"""Writing a campaign's replies once per delivery, by the writer the campaign names.

A stored draft is reused (a retried or re-executed run never asks the model again). An
`llm` campaign gets the model's reply, or the template's, visibly, when the model is not
configured, its circuit is open, it failed, or what it wrote was refused by the filters
(then the refused text and the reason are kept with the draft).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from social_pipelines.campaigns import Campaign
from social_pipelines.errors import SocialError
from social_pipelines.log import Log
from social_pipelines.models import SocialPost
from social_pipelines.replies.llm import POLICY, DraftRefused, LLMReplyWriter
from social_pipelines.replies.template import TemplateReplyWriter
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.retry import retrying
from social_pipelines.store.drafts import FALLBACK, WRITTEN, DraftStore, StoredDraft

_LOG = logging.getLogger(__name__)


@dataclass
class DraftingReport:
    drafts: list[StoredDraft] = field(default_factory=list)
    # llm, template, reused, llm_refused, llm_failed, llm_unavailable
    counts: Counter[str] = field(default_factory=Counter)
    fallback_reasons: list[str] = field(default_factory=list)

    @property
    def writer(self) -> str:
        """For the run's metadata: who wrote what, and why the template stood in."""
        parts = [
            f"{name} ({self.counts[name]})" for name in ("llm", "template") if self.counts[name]
        ]
        if self.counts["reused"]:
            parts.append(f"reused ({self.counts['reused']})")
        text = ", ".join(parts) or "none"
        if self.fallback_reasons:
            text += f"; template instead of llm: {self.fallback_reasons[0]}"
        return text


class Drafter:
    def __init__(
        self,
        drafts: DraftStore,
        template: TemplateReplyWriter,
        llm: LLMReplyWriter | None,
        *,
        breaker: SharedBreaker | None = None,
        unavailable: str = "no language model is configured (SOCIAL_LLM_BASE_URL, "
        "SOCIAL_LLM_MODEL)",
        log: Log | None = None,
    ) -> None:
        self.drafts = drafts
        self.template = template
        self.llm = llm
        self.breaker = breaker
        self.unavailable = unavailable
        self.log = log or _LOG

    def write(
        self,
        campaign: Campaign,
        items: Sequence[tuple[str, SocialPost]],
        *,
        max_length: int,
        dry_run: bool = False,
    ) -> DraftingReport:
        """A draft for each `(delivery_id, post)`: stored, else written now (and stored,
        unless `dry_run`)."""
        report = DraftingReport()
        stored = self.drafts.get_many(delivery for delivery, _ in items)
        for delivery, post in items:
            if delivery in stored:
                report.counts["reused"] += 1
                report.drafts.append(stored[delivery])
                continue
            draft = self._new(campaign, delivery, post, max_length, report)
            report.drafts.append(draft if dry_run else self.drafts.keep(draft))
        return report

    def _new(
        self,
        campaign: Campaign,
        delivery: str,
        post: SocialPost,
        max_length: int,
        report: DraftingReport,
    ) -> StoredDraft:
        reason: str | None = None
        refused_text: str | None = None
        if campaign.writer == "llm":
            if self.llm is None or self.breaker is None:
                reason = self.unavailable
                report.counts["llm_unavailable"] += 1
            else:
                try:
                    text = self._ask(post, campaign, max_length)
                except DraftRefused as refused:
                    reason = f"the model's reply was refused: {refused.message}"
                    refused_text = refused.text
                    report.counts["llm_refused"] += 1
                except SocialError as error:
                    reason = f"the model could not answer: {error}"
                    report.counts["llm_failed"] += 1
                else:
                    report.counts["llm"] += 1
                    return StoredDraft(delivery, campaign.name, "llm", text, WRITTEN)
            if reason not in report.fallback_reasons:
                report.fallback_reasons.append(reason)
            self.log.warning(f"{campaign.name}: template reply for {post.url or post.id}: {reason}")
        report.counts["template"] += 1
        text = self.template.write(post, campaign, max_length=max_length)
        return StoredDraft(
            delivery,
            campaign.name,
            "template",
            text,
            WRITTEN if reason is None else FALLBACK,
            reason,
            refused_text,
        )

    def _ask(self, post: SocialPost, campaign: Campaign, max_length: int) -> str:
        llm, breaker = self.llm, self.breaker
        assert llm is not None and breaker is not None
        runner = retrying(POLICY, what=f"llm reply for {campaign.name}", log=self.log)
        return runner(
            lambda: breaker.call(lambda: llm.write(post, campaign, max_length=max_length))
        )
