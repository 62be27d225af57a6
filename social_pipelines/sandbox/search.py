"""Mastodon's status search syntax, turned into SQL over the sandbox's statuses.

Real search has no date parameters; a pipeline that wants a time window writes `after:` /
`before:` / `during:` into `q`, so those operators (and `from:`, `language:`, `has:`, `is:`,
quoted phrases and `-exclusions`) behave as Mastodon documents them. Plain words must all
appear in the text, case-insensitively, anywhere (a substring match).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

DAY_MS = 86_400_000
# Double quotes make a phrase (apostrophes are text: "don't", "Dagster's").
TOKEN_RE = re.compile(r'[-+]?"[^"]*"?|\S+')


class InvalidQuery(ValueError):
    pass


@dataclass
class SearchQuery:
    terms: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)
    from_username: str | None = None
    from_me: bool = False
    before_ms: int | None = None  # created strictly before
    after_ms: int | None = None  # created at or after
    language: str | None = None
    has_media: bool = False
    has_link: bool = False
    is_reply: bool = False
    is_sensitive: bool = False
    account_id: int | None = None  # the `account_id` parameter, not part of `q`

    @property
    def empty(self) -> bool:
        return not (
            self.terms
            or self.from_username
            or self.from_me
            or self.before_ms
            or self.after_ms
            or self.language
            or self.has_media
            or self.has_link
            or self.is_reply
            or self.is_sensitive
        )


def parse_query(q: str) -> SearchQuery:
    query = SearchQuery()
    for match in TOKEN_RE.finditer(q):
        token = match.group(0).replace('"', "") if '"' in match.group(0)[:2] else match.group(0)
        negate = token.startswith("-") and len(token) > 1
        word = token[1:] if negate or token.startswith("+") else token
        operator, colon, value = word.partition(":")
        if colon and value and _apply_operator(query, operator.lower(), value):
            continue
        term = word.casefold().strip()
        if term:
            (query.excluded if negate else query.terms).append(term)
    return query


def _apply_operator(query: SearchQuery, operator: str, value: str) -> bool:
    if operator == "from":
        name = value.removeprefix("@").split("@", 1)[0]
        if name.lower() == "me":
            query.from_me = True
        else:
            query.from_username = name
    elif operator in ("before", "after", "during"):
        start = _day_start(value)
        if operator == "before":
            query.before_ms = start
        elif operator == "after":
            # Elasticsearch rounds `gt: <day>` up to the end of that day.
            query.after_ms = start + DAY_MS
        else:
            query.after_ms, query.before_ms = start, start + DAY_MS
    elif operator == "language":
        query.language = value.lower()
    elif operator == "has":
        if value.lower() in ("media", "image"):
            query.has_media = True
        elif value.lower() == "link":
            query.has_link = True
        else:
            return False
    elif operator == "is":
        if value.lower() == "reply":
            query.is_reply = True
        elif value.lower() == "sensitive":
            query.is_sensitive = True
        else:
            return False
    elif operator == "in":
        pass  # in:all / in:library / in:public: everything here is public
    else:
        return False
    return True


def _day_start(value: str) -> int:
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise InvalidQuery(f"Invalid date {value}") from error
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def to_sql(query: SearchQuery, viewer_id: int) -> tuple[str, list[object]]:
    """A WHERE clause over `statuses s JOIN accounts a` and its parameters."""
    clauses = ["(s.visibility IN ('public', 'unlisted') OR s.account_id = ?)"]
    params: list[object] = [viewer_id]
    for term in query.terms:
        clauses.append("instr(s.search_text, ?) > 0")
        params.append(term)
    for term in query.excluded:
        clauses.append("instr(s.search_text, ?) = 0")
        params.append(term)
    if query.from_me:
        clauses.append("s.account_id = ?")
        params.append(viewer_id)
    if query.from_username:
        clauses.append("a.username = ?")
        params.append(query.from_username)
    if query.account_id is not None:
        clauses.append("s.account_id = ?")
        params.append(query.account_id)
    if query.before_ms is not None:
        clauses.append("s.created_at_ms < ?")
        params.append(query.before_ms)
    if query.after_ms is not None:
        clauses.append("s.created_at_ms >= ?")
        params.append(query.after_ms)
    if query.language:
        clauses.append("s.language = ?")
        params.append(query.language)
    if query.has_media:
        clauses.append("EXISTS (SELECT 1 FROM media m WHERE m.status_id = s.id)")
    if query.has_link:
        clauses.append(
            "(instr(s.search_text, 'http://') > 0 OR instr(s.search_text, 'https://') > 0)"
        )
    if query.is_reply:
        clauses.append("s.in_reply_to_id IS NOT NULL")
    if query.is_sensitive:
        clauses.append("s.sensitive = 1")
    return " AND ".join(clauses), params
