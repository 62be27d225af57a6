"""What a written reply must not be, whoever wrote it: checked before it is stored.

A language model can say anything; these are the brand's lines it must not cross, each
refusal with a reason a person can read in the drafts table and the run's metadata.
"""

from __future__ import annotations

import difflib
import re

from social_pipelines.campaigns import Campaign
from social_pipelines.models import SocialPost
from social_pipelines.platforms.text import URL_PATTERN

# Links written without a scheme (example.com/path, www.example.com) count too.
BARE_LINK = re.compile(
    r"(?<![\w@.])(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ai|co|dev|app|"
    r"social|xyz|info|biz|me|ly|gl|gg|tv|us|uk|de|fr|eu)(?:/\S*)?\b",
    re.IGNORECASE,
)
MENTION = re.compile(r"(?<![\w@])@([\w.]+(?:@[\w.-]+\w)?)")
# More mentions than the author's and one more read as a mass mention.
MAX_OTHER_MENTIONS = 1
# A reply this close to the post (difflib's ratio, after normalising) repeats it.
REPEAT_RATIO = 0.8


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def refusal(text: str, post: SocialPost, campaign: Campaign) -> str | None:
    """Why `text` may not answer `post` for `campaign`; None when it may."""
    if not MENTION.sub("", text).strip(" \t\n.,!?"):
        return "empty reply (nothing but mentions and punctuation)"
    if not campaign.allow_links and (URL_PATTERN.search(text) or BARE_LINK.search(text)):
        return "contains a link (the campaign does not allow links: allow_links = true)"
    folded = text.casefold()
    blocked = [word for word in campaign.blocklist if word.casefold() in folded]
    if blocked:
        return f"contains blocklisted {', '.join(repr(word) for word in blocked)}"
    author = post.author_handle.lstrip("@").casefold()
    others = {
        handle
        for handle in (m.casefold() for m in MENTION.findall(text))
        if handle != author and handle.split("@")[0] != author.split("@")[0]
    }
    if len(others) > MAX_OTHER_MENTIONS:
        return f"mentions {len(others)} accounts besides the author (a mass mention)"
    reply, original = _normal(MENTION.sub("", text)), _normal(post.text)
    if original and (
        reply == original
        or difflib.SequenceMatcher(None, reply, original).ratio() >= REPEAT_RATIO
        or (len(original) >= 20 and original in reply)
    ):
        return "repeats the post it answers"
    return None
