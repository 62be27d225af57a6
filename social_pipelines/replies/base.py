"""What a reply writer is: given a post and a campaign, the text to answer with."""

from __future__ import annotations

from typing import Protocol

from social_pipelines.campaigns import Campaign
from social_pipelines.models import SocialPost


class ReplyWriter(Protocol):
    name: str

    def write(self, post: SocialPost, campaign: Campaign, *, max_length: int) -> str:
        """The reply text, at most `max_length` as the platform counts it."""
        ...
