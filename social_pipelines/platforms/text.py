"""Text as platforms count and render it: plain text from HTML, lengths with URL weights."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from html.parser import HTMLParser

URL_PATTERN = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
REMOTE_MENTION = re.compile(r"(?<![\w@])(@[\w.]+)@[\w.-]+\w")


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


def counted_length(text: str, *, characters_per_url: int = 23) -> int:
    """Length the way Mastodon's validator counts it: every URL as a fixed weight, a remote
    mention as its local part, the rest by (normalised) code point."""
    text = unicodedata.normalize("NFC", text)
    text = REMOTE_MENTION.sub(r"\1", text)
    urls = URL_PATTERN.findall(text)
    rest = URL_PATTERN.sub("", text)
    return len(rest) + characters_per_url * len(urls)


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
