"""Bluesky rich-text facets: links, mentions and hashtags, pointed at by UTF-8 byte offsets.

Bluesky does not link anything in a post's text by itself: a client sends `facets`, each a
byte range of the UTF-8 text (start inclusive, end exclusive) with a feature
(`app.bsky.richtext.facet#link {uri}`, `#mention {did}`, `#tag {tag}`) [lexicon
app/bsky/richtext/facet.json; platforms.md §2.4]. The patterns are the bsky-docs guides'
("Posts" and "Links, mentions, and rich text"): its URL regex, its handle regex (preceded,
as in the guide's TypeScript parser, by the start, a space or `(`, so an e-mail address is
no mention), and its hashtag rule (`#` then no digit, trailing punctuation dropped). Pure
functions: resolving a handle to a DID is the caller's request (`facets(resolve=...)`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import regex

LINK = "app.bsky.richtext.facet#link"
MENTION = "app.bsky.richtext.facet#mention"
TAG = "app.bsky.richtext.facet#tag"

# bsky-docs posts.md `parse_urls` ("partial/naive URL regex ... tweaked to disallow some
# trailing punctuation"); its leading `[$|\W]` (one non-word byte, consumed) is a lookbehind
# here, so a URL at the very start of the text is found too.
_URL = re.compile(
    rb"(?<![A-Za-z0-9_])(https?:\/\/(www\.)?[-a-zA-Z0-9@:%._\+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b"
    rb"([-a-zA-Z0-9()@:%_\+.~#?&//=]*[-a-zA-Z0-9@%_\+~#//=])?)"
)
# bsky-docs posts.md `parse_mentions` (handle syntax, atproto.com/specs/handle), preceded
# by the start, whitespace or `(` (post-richtext.md's TypeScript `(^|\s|\()`) and not
# followed by a word character (its `\b`).
_MENTION = re.compile(
    rb"(?<![^\s(])(@(([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?\.)+"
    rb"[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?))(?![A-Za-z0-9_])"
)
# post-richtext.md's TypeScript: `(?:^|\s)(#[^\d\s]\S*)`, trailing punctuation stripped.
_TAG = regex.compile(r"(?<!\S)(#[^\d\s]\S*)")
_TRAILING_PUNCTUATION = regex.compile(r"\p{P}+$")
# facet.json `tag`: maxLength 640 (bytes), maxGraphemes 64.
MAX_TAG_BYTES = 640
MAX_TAG_GRAPHEMES = 64
_GRAPHEME = regex.compile(r"\X")

Kind = Literal["link", "mention", "tag"]
_PRIORITY: dict[str, int] = {"link": 0, "mention": 1, "tag": 2}


@dataclass(frozen=True)
class Span:
    """A stretch of the text's UTF-8 bytes, `start` inclusive, `end` exclusive, and what it
    is: a link (`value` the URI), a mention (`value` the handle, without `@`) or a tag
    (`value` without `#`)."""

    start: int
    end: int
    kind: Kind
    value: str


def _links(data: bytes) -> list[Span]:
    return [
        Span(m.start(1), m.end(1), "link", m.group(1).decode("utf-8")) for m in _URL.finditer(data)
    ]


def _mentions(data: bytes) -> list[Span]:
    return [
        Span(m.start(1), m.end(1), "mention", m.group(2).decode("utf-8"))
        for m in _MENTION.finditer(data)
    ]


def _tags(text: str) -> list[Span]:
    spans: list[Span] = []
    for found in _TAG.finditer(text):
        tag = _TRAILING_PUNCTUATION.sub("", found.group(1))
        name = tag[1:]
        if not name or len(name.encode("utf-8")) > MAX_TAG_BYTES:
            continue
        if len(_GRAPHEME.findall(name)) > MAX_TAG_GRAPHEMES:
            continue
        start = len(text[: found.start(1)].encode("utf-8"))
        spans.append(Span(start, start + len(tag.encode("utf-8")), "tag", name))
    return spans


def spans(text: str) -> list[Span]:
    """Every link, mention and tag in `text`, by byte offset, none overlapping (facets may
    not overlap: a `#fragment` or `@name` inside a link is part of the link)."""
    data = text.encode("utf-8")
    found = sorted(
        _links(data) + _mentions(data) + _tags(text),
        key=lambda span: (span.start, _PRIORITY[span.kind]),
    )
    kept: list[Span] = []
    for span in found:
        if not kept or span.start >= kept[-1].end:
            kept.append(span)
    return kept


def facets(text: str, *, resolve: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """The `facets` of a post with `text`. `resolve(handle)` is the mentioned account's DID,
    or None when the handle resolves to no one: that mention stays plain text (the guide:
    "If the handle can't be resolved, just skip it!")."""
    result: list[dict[str, Any]] = []
    for span in spans(text):
        if span.kind == "link":
            feature: dict[str, Any] = {"$type": LINK, "uri": span.value}
        elif span.kind == "mention":
            did = resolve(span.value)
            if did is None:
                continue
            feature = {"$type": MENTION, "did": did}
        else:
            feature = {"$type": TAG, "tag": span.value}
        result.append(
            {"index": {"byteStart": span.start, "byteEnd": span.end}, "features": [feature]}
        )
    return result
