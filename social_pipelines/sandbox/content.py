"""Plain status text -> Mastodon's HTML `content`, and Mastodon's character counting.

Clients never see the text a status was posted with, only this HTML (paragraphs, `<br />`,
links for URLs, mentions and hashtags), so a client that turns `content` back into text must
be exercised against the same markup a real instance produces.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

import regex

URL_LENGTH = 23  # characters_reserved_per_url
URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'\u2019]")
MENTION_RE = re.compile(r"(?<![\w/@])@([A-Za-z0-9_]{1,30})(?:@([A-Za-z0-9.\-]+\.[A-Za-z]{2,}))?")
HASHTAG_RE = re.compile(r"(?<![\w/&#])#(\w*[^\W\d_]\w*)")
TOKEN_RE = re.compile(f"{URL_RE.pattern}|{MENTION_RE.pattern}|{HASHTAG_RE.pattern}")
PARAGRAPH_SPLIT_RE = re.compile(r"\n\s*\n")
URL_DISPLAY_LIMIT = 30
GRAPHEME_RE = regex.compile(r"\X")


@dataclass(frozen=True)
class Mention:
    username: str
    domain: str | None


def mentions_in(text: str) -> list[Mention]:
    seen: list[Mention] = []
    for match in MENTION_RE.finditer(_without_urls(text)):
        mention = Mention(match.group(1), match.group(2))
        if mention not in seen:
            seen.append(mention)
    return seen


def hashtags_in(text: str) -> list[str]:
    tags: list[str] = []
    for match in HASHTAG_RE.finditer(_without_urls(text)):
        name = match.group(1).lower()
        if name not in tags:
            tags.append(name)
    return tags


def _without_urls(text: str) -> str:
    return URL_RE.sub(" ", text)


def character_count(text: str, spoiler_text: str = "") -> int:
    """Mastodon's count (StatusLengthValidator): URLs as 23, remote mentions as `@user`, and
    the grapheme clusters of spoiler and text joined, as Mastodon joins them."""
    body = URL_RE.sub("x" * URL_LENGTH, text)
    body = MENTION_RE.sub(lambda m: "@" + m.group(1), body)
    return _graphemes(spoiler_text + body)


def _graphemes(text: str) -> int:
    """Extended grapheme clusters (`\\X`), what Ruby's `grapheme_length` counts."""
    return len(GRAPHEME_RE.findall(text))


def render_html(text: str, base_url: str, mention_url: Callable[[Mention], str | None]) -> str:
    """`<p>` paragraphs, `<br />` line breaks, links as Mastodon marks them up.

    `mention_url` returns the profile URL of a mentioned account it knows, else None (an
    unknown account is left as plain text, as Mastodon does).
    """
    paragraphs = PARAGRAPH_SPLIT_RE.split(text.strip("\n"))
    rendered = []
    for paragraph in paragraphs:
        lines = [_linkify(line, base_url, mention_url) for line in paragraph.split("\n")]
        rendered.append("<p>" + "<br />".join(lines) + "</p>")
    return "".join(rendered)


def _linkify(line: str, base_url: str, mention_url: Callable[[Mention], str | None]) -> str:
    out: list[str] = []
    last = 0
    for match in TOKEN_RE.finditer(line):
        out.append(html.escape(line[last : match.start()], quote=False))
        out.append(_link(match.group(0), base_url, mention_url))
        last = match.end()
    out.append(html.escape(line[last:], quote=False))
    return "".join(out)


def _link(token: str, base_url: str, mention_url: Callable[[Mention], str | None]) -> str:
    if token.startswith("#"):
        name = token[1:]
        return (
            f'<a href="{html.escape(base_url)}/tags/{html.escape(name.lower())}"'
            f' class="mention hashtag" rel="tag">#<span>{html.escape(name)}</span></a>'
        )
    if token.startswith("@"):
        match = MENTION_RE.fullmatch(token)
        if match is None:
            return html.escape(token, quote=False)
        url = mention_url(Mention(match.group(1), match.group(2)))
        if url is None:
            return html.escape(token, quote=False)
        return (
            f'<span class="h-card" translate="no"><a href="{html.escape(url)}"'
            f' class="u-url mention">@<span>{html.escape(match.group(1))}</span></a></span>'
        )
    scheme, _, rest = token.partition("://")
    prefix = scheme + "://"
    shown, hidden = rest[:URL_DISPLAY_LIMIT], rest[URL_DISPLAY_LIMIT:]
    shown_class = "ellipsis" if hidden else ""
    return (
        f'<a href="{html.escape(token)}" target="_blank" rel="nofollow noopener"'
        f' translate="no"><span class="invisible">{html.escape(prefix)}</span>'
        f'<span class="{shown_class}">{html.escape(shown)}</span>'
        f'<span class="invisible">{html.escape(hidden)}</span></a>'
    )
