"""Text as platforms count and render it: plain text from HTML, lengths with URL weights."""

from __future__ import annotations

import re
from collections.abc import Callable
from html.parser import HTMLParser

import regex

URL_PATTERN = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
REMOTE_MENTION = re.compile(r"(?<![\w@])(@[\w.]+)@[\w.-]+\w")
GRAPHEME = regex.compile(r"\X")


class _TextExtractor(HTMLParser):
    """Mastodon content is HTML: paragraphs and line breaks matter, markup does not."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return "".join(extractor.parts).strip()


def counted_length(
    text: str, *, characters_per_url: int | None = 23, remote_mentions_as_local: bool = True
) -> int:
    """Length the way Mastodon's validator counts it: every URL as a fixed weight, a remote
    mention as its local part, the rest by grapheme cluster (what a reader sees as one
    character: a flag, a family emoji, a letter with its accents).

    With `characters_per_url=None` and `remote_mentions_as_local=False` it is the plain
    grapheme count (Bluesky's `maxGraphemes`)."""
    if remote_mentions_as_local:
        text = REMOTE_MENTION.sub(r"\1", text)
    if characters_per_url is not None:
        text = URL_PATTERN.sub("x" * characters_per_url, text)
    return len(GRAPHEME.findall(text))


def fit_text(text: str, limit: int, length: Callable[[str], int] = len) -> str:
    """Shorten `text` at a word boundary, with an ellipsis, until `length(text) <= limit`."""
    if length(text) <= limit:
        return text
    words = text.split(" ")
    while words:
        words.pop()
        candidate = " ".join(words).rstrip(" ,;:-") + "…"
        if length(candidate) <= limit:
            return candidate
    raise ValueError(f"cannot fit any text into {limit} characters")


EVERYTHING = "*"


def matches_query(text: str, query: str) -> bool:
    """Whether a post read from a source without a query of its own (the account's
    mentions) matches a campaign's query: every word of it appears in the text, case and
    accents as written aside; `*` matches every post."""
    if query.strip() == EVERYTHING:
        return True
    haystack = text.casefold()
    return all(word.casefold() in haystack for word in query.split())


# A hashtag as Mastodon links one: word characters with at least one letter (`#2024` is
# not a tag, `#web3` is). Mastodon also allows a middle dot and ZWNJ inside; not here.
HASHTAG_NAME = re.compile(r"\w*[^\W\d_]\w*")


def hashtag_name(query: str) -> str | None:
    """The tag a hashtag source reads, when `query` is exactly one hashtag, with or
    without its `#` (`#DataEngineering`, `dagster`); None for anything else (two words, a
    phrase, punctuation, only digits), which would be a search, not a tag. The case is
    kept: tags are matched case-insensitively by the platform."""
    name = query.strip().removeprefix("#")
    return name if HASHTAG_NAME.fullmatch(name) else None
