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
