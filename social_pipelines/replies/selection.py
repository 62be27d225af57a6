"""Choosing which search hits deserve a reply.

Every skipped post is counted under its reason, so a run's summary says why it answered
fewer posts than it found.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from social_pipelines.campaigns import Campaign
from social_pipelines.models import DeliveryState, Identity, SocialPost


@dataclass
class Selection:
    candidates: list[SocialPost] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def already_answered(self) -> int:
        return self.skipped["already_answered"]


def oldest_answerable(campaign: Campaign, *, window_end: datetime, now: datetime) -> datetime:
    """The oldest post a campaign may still answer: `max_age_hours` before the end of the
    window, and never older than that from now (a backfill never answers stale posts).
    Search pages back to here, and selection skips anything older."""
    return max(window_end, now) - timedelta(hours=campaign.max_age_hours)


@dataclass(frozen=True)
class AgeCutoff:
    """Where a campaign's age limit falls against one window's own two hours.

    A run searches from `oldest` to the end of its window. Run on time, `oldest` lies
    before the window starts; replayed later (a backfill after an outage), the limit
    counts from now and may fall inside the window, or after its end: the window's posts
    written before `oldest` are never answered, and the run must say so."""

    oldest: datetime
    window_start: datetime
    window_end: datetime
    max_age_hours: float

    @property
    def cut(self) -> timedelta:
        """How much of the window's own span lies before the cutoff (zero to all of it)."""
        edge = min(max(self.oldest, self.window_start), self.window_end)
        return edge - self.window_start

    @property
    def whole_window(self) -> bool:
        """Nothing in the window may be answered: not worth a single search request."""
        return self.oldest >= self.window_end

    @property
    def extent(self) -> str:
        """`none`, `part` or `whole`: how much of the window the cutoff took."""
        if self.whole_window:
            return "whole"
        return "part" if self.cut > timedelta(0) else "none"

    def warning(self, campaign: str) -> str | None:
        """What the log says when the cutoff took some of the window; None when not."""
        span = f"{self.window_start:%Y-%m-%d %H:%M}-{self.window_end:%H:%M} UTC"
        limit = (
            f"the age cutoff {self.oldest:%Y-%m-%d %H:%M:%S} UTC "
            f"(max_age_hours={self.max_age_hours:g} before now)"
        )
        if self.whole_window:
            return (
                f"{campaign}: window {span} ended before {limit}: none of its posts may be "
                "answered any more, so it was not searched"
            )
        if self.cut > timedelta(0):
            return (
                f"{campaign}: posts written in window {span} before {limit} are not "
                f"answered and were not searched ({_minutes(self.cut)} of the window); "
                "the rest of the window is"
            )
        return None


def _minutes(span: timedelta) -> str:
    minutes = round(span.total_seconds() / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def age_cutoff(
    campaign: Campaign, *, window_start: datetime, window_end: datetime, now: datetime
) -> AgeCutoff:
    """The campaign's age limit for the run of one window, at `now`."""
    return AgeCutoff(
        oldest=oldest_answerable(campaign, window_end=window_end, now=now),
        window_start=window_start,
        window_end=window_end,
        max_age_hours=campaign.max_age_hours,
    )


def choose_posts(
    posts: list[SocialPost],
    *,
    campaign: Campaign,
    identity: Identity,
    ledger_states: dict[str, DeliveryState],
    window_end: datetime,
    now: datetime,
    max_replies: int,
) -> Selection:
    """Keep posts that are someone else's, unanswered, recent enough and not blocklisted,
    oldest first (fair to whoever waited longest), at most `max_replies`.

    A post counts as recent when it was written in the `max_age_hours` before the end of
    the window *and* is not older than that from now either: a backfill of an old window
    never floods an account with answers to stale posts.
    """
    selection = Selection()
    oldest = oldest_answerable(campaign, window_end=window_end, now=now)
    blocked = [word.casefold() for word in campaign.blocklist]
    seen: set[str] = set()
    for post in sorted(posts, key=lambda p: p.created_at):
        state = ledger_states.get(post.id)
        if post.id in seen:
            reason = "duplicate_hit"
        elif post.author_id == identity.account_id:
            reason = "own_post"
        elif state == DeliveryState.SENT:
            reason = "already_answered"
        elif state == DeliveryState.DEAD:
            reason = "dead"
        elif post.created_at >= window_end:
            reason = "after_window"
        elif post.created_at < oldest:
            reason = "too_old"
        elif any(word in post.text.casefold() for word in blocked):
            reason = "blocklisted"
        elif len(selection.candidates) >= max_replies:
            reason = "over_max_replies"
        else:
            selection.candidates.append(post)
            seen.add(post.id)
            continue
        seen.add(post.id)
        selection.skipped[reason] += 1
    return selection
