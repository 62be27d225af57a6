"""The error taxonomy every platform answer is mapped into.

Adapters never raise raw httpx errors or status codes upward: they raise one of these, and
every decision above them (retry, wait, refresh a token, reconcile, defer, dead-letter) is
made from the class alone. Messages carry a one-line summary of what the platform said
(an HTML error page's title, else its first line), never a token or a request header; the
ledger keeps a longer excerpt (`full_text`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import TypedDict, Unpack

ERROR_EXCERPT_LIMIT = 2048
SUMMARY_LIMIT = 200
_HTML_TAG = re.compile(r"<(?:!doctype\s+html|html|head|body|title)\b", re.IGNORECASE)
_PAGE_START = re.compile(r"<(?:!doctype\s+html|html)\b", re.IGNORECASE)


def excerpt(text: str | bytes | None, limit: int = ERROR_EXCERPT_LIMIT) -> str:
    """Trim what a platform said to a size that fits a ledger row and a log line."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode("utf-8", errors="ignore") + "..."


class _PageSummary(HTMLParser):
    """An HTML page's `<title>`, and its visible text in case it has none."""

    _INVISIBLE = frozenset({"script", "style", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: list[str] = []
        self.text: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._INVISIBLE:
            self._open.append(tag)
        elif tag in ("br", "p", "div", "h1", "h2", "h3", "li", "tr"):
            self.text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            self._open.remove(tag)

    def handle_data(self, data: str) -> None:
        if "title" in self._open:
            self.title.append(data)
        elif not self._open:
            self.text.append(data)


def _page_line(page: str) -> str:
    parsed = _PageSummary()
    parsed.feed(page)
    parsed.close()
    title = " ".join("".join(parsed.title).split())
    if title:
        return title
    return next((line for line in "".join(parsed.text).splitlines() if line.strip()), "")


def summarize(text: str | None, limit: int = SUMMARY_LIMIT) -> str:
    """One line for a log or a failure from what a platform said: an HTML error page's
    title (else its first line of visible text), or the first non-empty line of anything
    else, whitespace collapsed, at most `limit` characters.

    A page after a one-line lead (`mastodon: server error (HTTP 502): <!DOCTYPE html>...`,
    as the ledger stores it) keeps the lead: `mastodon: server error (HTTP 502): 502 Bad
    Gateway`.
    """
    if not text or not text.strip():
        return ""
    if text.lstrip().startswith("<") and _HTML_TAG.search(text):
        line = _page_line(text)
    elif (start := _PAGE_START.search(text)) and "\n" not in text[: start.start()]:
        line = text[: start.start()] + _page_line(text[start.start() :])
    else:
        line = next((line for line in text.splitlines() if line.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


class ErrorFields(TypedDict, total=False):
    """The keyword arguments every `SocialError` takes, for subclasses that forward them."""

    platform: str
    status_code: int | None
    detail: str


class SocialError(Exception):
    """Base of everything the project decides on.

    `retryable` says whether repeating the same call can help; `may_have_reached` whether a
    create might have been processed by the platform (then it is never blindly repeated).
    """

    retryable: bool = False
    may_have_reached: bool = False

    def __init__(
        self,
        message: str,
        *,
        platform: str = "",
        status_code: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.platform = platform
        self.status_code = status_code
        self.detail = excerpt(detail)

    @property
    def kind(self) -> str:
        """A stable name for the ledger and metrics (`rate_limited`, `transient`, ...)."""
        return kind_of(type(self))

    @property
    def summary(self) -> str:
        """What the platform said, in one short line (an HTML page's title)."""
        return summarize(self.detail)

    def _describe(self, detail: str) -> str:
        where = f"{self.platform}: " if self.platform else ""
        status = f" (HTTP {self.status_code})" if self.status_code else ""
        tail = f": {detail}" if detail and detail not in self.message else ""
        return f"{where}{self.message}{status}{tail}"

    def __str__(self) -> str:
        """For logs, Dagster failures and run metadata: the summary, not the whole page."""
        return self._describe(self.summary)

    @property
    def full_text(self) -> str:
        """For the ledger: the message with the platform's body excerpt, at most 2 KB."""
        return excerpt(self._describe(self.detail))


class RateLimited(SocialError):
    """The platform asked us to slow down; nothing was processed."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    @property
    def resume_at(self) -> datetime | None:
        if self.retry_after is None:
            return None
        return datetime.now(UTC) + timedelta(seconds=self.retry_after)


class QuotaExhausted(SocialError):
    """A posting quota (ours or the platform's) is used up until a known time."""

    def __init__(
        self, message: str, *, until: datetime | None = None, **kwargs: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kwargs)
        self.until = until


class AuthExpired(SocialError):
    """The token was refused as expired or invalid: refresh once, else reconnect."""


class Transient(SocialError):
    """A failure that provably did not create anything: connect error, 503, timeout before
    the request was sent. Safe to retry, creates included."""

    retryable = True


class NotReady(SocialError):
    """The platform answered that something the request needs is not ready yet (media still
    processing: Mastodon's 422 "Cannot attach files that have not finished processing"), so
    it created nothing: the same request, a create included, may be repeated in place after
    `retry_after` seconds. Not the platform being unwell (the breaker does not count it),
    and not a rejection (waiting is the cure)."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kwargs: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class OutcomeUnknown(SocialError):
    """The request may have been processed but no answer came back (read timeout, reset
    after sending, 500/502/504 on a create). Reconcile before anything is sent again."""

    retryable = False
    may_have_reached = True


class Duplicate(SocialError):
    """The platform says this content was already posted: reconcile, do not fail."""

    may_have_reached = True


class Rejected(SocialError):
    """Permanent: validation, permission, not found. Repeating it cannot help."""


class OutOfAttempts(SocialError):
    """We gave up on a delivery after its attempts, each retryable: the last error is the
    detail. Not the platform's verdict (that is `Rejected`): a person may retry it."""


class Inconclusive(SocialError):
    """The platform answered, but not enough to decide: a reconciliation that reached its
    limit before the delivery's plan time cannot call a miss a miss. Nothing is wrong with
    the platform, and asking the same again cannot help."""


class Interrupted(SocialError):
    """The run was told to stop (SIGTERM, Ctrl-C) with the delivery claimed and nothing
    sent: its claim is given back, and a later attempt sends it."""

    retryable = True


class CircuitOpen(SocialError):
    """Our breaker for this platform and account is open until `until`."""

    def __init__(
        self, message: str, *, until: datetime | None = None, **kwargs: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kwargs)
        self.until = until


class ConfigError(ValueError):
    """Bad configuration or input: the message names the file, field or value and what is
    allowed."""


class MediaError(ConfigError):
    """An image of a post that cannot be used: missing, not an image, truncated, too large,
    a refused URL. Bad input, so permanent like any `ConfigError`: rendering it again cannot
    help, only a corrected post can.

    `transient` marks the one exception, a fetch that failed on the way (a timeout, a
    connection refused, an HTTP 5xx from the image's host): the same URL may work later, so
    a caller may choose to try again in a later run.
    """

    def __init__(
        self, reason: str, *, image: str, post_id: str | None = None, transient: bool = False
    ) -> None:
        where = f"post '{post_id}', image '{image}'" if post_id else f"image '{image}'"
        super().__init__(f"{where}: {reason}")
        self.reason = reason
        self.image = image
        self.post_id = post_id
        self.transient = transient


_KIND_NAMES: dict[type, str] = {
    RateLimited: "rate_limited",
    QuotaExhausted: "quota_exhausted",
    AuthExpired: "auth_expired",
    Transient: "transient",
    NotReady: "not_ready",
    OutcomeUnknown: "outcome_unknown",
    Duplicate: "duplicate",
    Rejected: "rejected",
    OutOfAttempts: "out_of_attempts",
    Inconclusive: "inconclusive",
    CircuitOpen: "circuit_open",
    Interrupted: "interrupted",
}


def kind_of(error_type: type[SocialError]) -> str:
    """The ledger's `error_kind` for a class, to compare a stored row with the taxonomy
    rather than with a string literal."""
    return _KIND_NAMES.get(error_type, error_type.__name__)


# Failures that say the platform is unwell, as opposed to our request being wrong.
PLATFORM_UNWELL: tuple[type[SocialError], ...] = (Transient, OutcomeUnknown)


def error_class_for_kind(kind: str) -> str | None:
    """The taxonomy class a stored kind (`rate_limited`, a ledger row's `error_kind`) names;
    None for a kind that is no class of ours (`missed`, `cancelled`)."""
    for cls, name in _KIND_NAMES.items():
        if name == kind:
            return cls.__name__
    return None


def taxonomy_names() -> frozenset[str]:
    """The names of every class of the taxonomy: what an alert reports as its error class
    where a failure carries one."""
    found: set[str] = set()
    pending: list[type] = [SocialError, ConfigError]
    while pending:
        cls = pending.pop()
        found.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return frozenset(found)
