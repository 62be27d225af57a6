"""The offline default writer: a campaign's template filled in, deterministic, no network.

Deterministic on purpose: the same post and template always give the same text, so a
dry run shows exactly what a real run would post.
"""

from __future__ import annotations

import re
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
        mention = f"@{author}"
        text = campaign.template.format(author=author, query=campaign.query, campaign=campaign.name)
        text = " ".join(text.split())
        fitted = fit_text(text, max_length, self.length)
        # Mastodon only threads a reply to people it mentions: the mention must survive
        # shortening, so when it was cut (or never there) it leads the reply.
        mentioned = re.compile(rf"(?<!\S){re.escape(mention)}\b")
        if not mentioned.search(fitted):
            body = " ".join(mentioned.sub("", text).split())
            fitted = f"{mention} " + fit_text(
                body, max_length - self.length(mention + " "), self.length
            )
        return fitted
