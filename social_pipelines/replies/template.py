"""The offline default writer: a campaign's template filled in, deterministic, no network.

Deterministic on purpose: the same post and template always give the same text, so a
dry run shows exactly what a real run would post.
"""

from __future__ import annotations

from collections.abc import Callable

from social_pipelines.campaigns import Campaign
from social_pipelines.models import SocialPost
from social_pipelines.platforms.text import fit_text


class TemplateReplyWriter:
    name = "template"

    def __init__(self, length: Callable[[str], int] = len) -> None:
        self.length = length

    def write(self, post: SocialPost, campaign: Campaign, *, max_length: int) -> str:
        author = post.author_handle.lstrip("@")
        text = campaign.template.format(author=author, query=campaign.query, campaign=campaign.name)
        # Mastodon only threads a reply to people it mentions; make sure the author is.
        if f"@{author}" not in text:
            text = f"@{author} {text}"
        return fit_text(" ".join(text.split()), max_length, self.length)
