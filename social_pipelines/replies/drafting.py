"""Writing a campaign's replies once per delivery, by the writer the campaign names.

A stored draft is reused (a retried or re-executed run never asks the model again). An
`llm` campaign gets the model's reply, or the template's, visibly, when the model is not
configured, its circuit is open, it failed, or what it wrote was refused by the filters
(then the reason, quoting the refused text, is kept with the draft).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from social_pipelines.campaigns import Campaign
from social_pipelines.errors import (
    AuthExpired,
    CircuitOpen,
    QuotaExhausted,
    Rejected,
    SocialError,
)
from social_pipelines.log import Log
from social_pipelines.models import SocialPost
from social_pipelines.replies.llm import POLICY, DraftRefused, LLMReplyWriter
from social_pipelines.replies.template import TemplateReplyWriter
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.resilience.retry import retrying
from social_pipelines.store.drafts import ACCEPTED, REFUSED, DraftStore, StoredDraft

_LOG = logging.getLogger(__name__)
# Answers that the next post would get as well: not asked again in the same step.
_SETTLED_FOR_THE_STEP = (AuthExpired, QuotaExhausted, Rejected)
# How much of a refused draft its reason quotes.
REFUSED_QUOTE_LIMIT = 300
# How many distinct reasons the `writer` summary names.
REASONS_SHOWN = 3
UNCONFIGURED = "not configured (SOCIAL_LLM_BASE_URL, SOCIAL_LLM_MODEL)"


@dataclass
class DraftingReport:
    drafts: list[StoredDraft] = field(default_factory=list)
    # llm, template, reused, llm_refused, llm_failed, llm_unavailable
    counts: Counter[str] = field(default_factory=Counter)
    # Why the template answered for an `llm` campaign, each reason once, in order.
    fallback_reasons: list[str] = field(default_factory=list)

    @property
    def writer(self) -> str:
        """For the run's metadata and log: who wrote what, and why the template stood in
        (`template (2) (llm: circuit llm:gpt-4o-mini is open until ... UTC ...)`)."""
        parts = [
            f"{name} ({self.counts[name]})"
            for name in ("llm", "template", "reused")
            if self.counts[name]
        ]
        text = ", ".join(parts) or "none"
        if self.fallback_reasons:
            shown = "; ".join(self.fallback_reasons[:REASONS_SHOWN])
            more = len(self.fallback_reasons) - REASONS_SHOWN
            text += f" (llm: {shown}" + (f"; and {more} more" if more > 0 else "") + ")"
        return text


class Drafter:
    def __init__(
        self,
        drafts: DraftStore,
        template: TemplateReplyWriter,
        llm: LLMReplyWriter | None,
        *,
        breaker: SharedBreaker | None = None,
        log: Log | None = None,
    ) -> None:
        self.drafts = drafts
        self.template = template
        self.llm = llm
        self.breaker = breaker
        self.log = log or _LOG

    def __enter__(self) -> Drafter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The model's HTTP client goes with the step that wrote with it."""
        if self.llm is not None:
            self.llm.chat.close()

    def write(
        self,
        campaign: Campaign,
        items: Sequence[tuple[str, SocialPost]],
        *,
        max_length: int,
        dry_run: bool = False,
    ) -> DraftingReport:
        """A draft for each `(delivery_id, post)`: stored, else written now (and stored,
        unless `dry_run`). Each is stored as soon as it is written, so a step that dies
        half way keeps what it paid for."""
        report = DraftingReport()
        stored = self.drafts.get_many(delivery for delivery, _ in items)
        given_up: str | None = None
        for delivery, post in items:
            if delivery in stored:
                report.counts["reused"] += 1
                report.drafts.append(stored[delivery])
                continue
            draft, given_up = self._new(campaign, delivery, post, max_length, report, given_up)
            report.drafts.append(draft if dry_run else self.drafts.keep(draft))
        return report

    def _new(
        self,
        campaign: Campaign,
        delivery: str,
        post: SocialPost,
        max_length: int,
        report: DraftingReport,
        given_up: str | None,
    ) -> tuple[StoredDraft, str | None]:
        """The draft, and the reason not to ask the model for the rest of this step."""
        if campaign.writer != "llm":
            text = self.template.write(post, campaign, max_length=max_length)
            report.counts["template"] += 1
            return StoredDraft(delivery, campaign.name, "template", text, ACCEPTED), given_up
        status, stored_reason = ACCEPTED, None
        if self.llm is None or self.breaker is None:
            reason = UNCONFIGURED
            report.counts["llm_unavailable"] += 1
        elif given_up is not None:
            reason = given_up
            report.counts["llm_unavailable"] += 1
        else:
            try:
                self.breaker.check()
                text = self._ask(post, campaign, max_length)
            except CircuitOpen as error:
                reason = error.message
                report.counts["llm_unavailable"] += 1
            except DraftRefused as refused:
                reason = f"its reply was refused: {refused.message}"
                quoted = refused.text[:REFUSED_QUOTE_LIMIT]
                stored_reason = f"{reason}; it wrote {quoted!r}"
                status = REFUSED
                report.counts["llm_refused"] += 1
            except SocialError as error:
                reason = f"it could not answer: {error}"
                report.counts["llm_failed"] += 1
                if isinstance(error, _SETTLED_FOR_THE_STEP):
                    given_up = f"{reason} (not asked again in this step)"
            else:
                report.counts["llm"] += 1
                return StoredDraft(delivery, campaign.name, "llm", text, ACCEPTED), given_up
        if reason not in report.fallback_reasons:
            report.fallback_reasons.append(reason)
        self.log.warning(
            f"{campaign.name}: the template answers {post.url or post.id} instead of the "
            f"language model: {reason}"
        )
        report.counts["template"] += 1
        text = self.template.write(post, campaign, max_length=max_length)
        draft = StoredDraft(
            delivery, campaign.name, "template", text, status, stored_reason or reason
        )
        return draft, given_up

    def _ask(self, post: SocialPost, campaign: Campaign, max_length: int) -> str:
        llm, breaker = self.llm, self.breaker
        assert llm is not None and breaker is not None
        runner = retrying(POLICY, what=f"llm reply for {campaign.name}", log=self.log)
        return runner(
            lambda: breaker.call(lambda: llm.write(post, campaign, max_length=max_length))
        )
