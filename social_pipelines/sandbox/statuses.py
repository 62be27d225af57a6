"""Statuses and media attachments in the database: writes, lookups, timelines, search.

Validation of what a client sends lives in the API layer; this module only stores and
queries, always ordering by snowflake id (which is creation time). Storing a status also
does what Mastodon does when one arrives: its hashtags are indexed for the tag timeline,
and every local account it mentions (other than its author) gets a `mention` notification.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from social_pipelines.sandbox.content import hashtags_in, mentions_in
from social_pipelines.sandbox.db import Database
from social_pipelines.sandbox.ids import next_id, next_notification_id
from social_pipelines.sandbox.search import SearchQuery, to_sql


@dataclass(frozen=True)
class StatusRecord:
    id: int
    account_id: int
    text: str
    spoiler_text: str
    in_reply_to_id: int | None
    in_reply_to_account_id: int | None
    visibility: str
    language: str | None
    sensitive: bool
    created_at_ms: int
    origin: str
    seed_key: str | None
    idempotency_key: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> StatusRecord:
        return cls(
            id=int(row["id"]),
            account_id=int(row["account_id"]),
            text=row["text"],
            spoiler_text=row["spoiler_text"],
            in_reply_to_id=row["in_reply_to_id"],
            in_reply_to_account_id=row["in_reply_to_account_id"],
            visibility=row["visibility"],
            language=row["language"],
            sensitive=bool(row["sensitive"]),
            created_at_ms=int(row["created_at_ms"]),
            origin=row["origin"],
            seed_key=row["seed_key"],
            idempotency_key=row["idempotency_key"],
        )


@dataclass(frozen=True)
class MediaRecord:
    id: int
    account_id: int
    status_id: int | None
    mime: str
    ext: str
    description: str | None
    width: int | None
    height: int | None
    created_at_ms: int
    ready_at_ms: int | None = None  # None: processed at upload

    def processed(self, now_ms: int) -> bool:
        return self.ready_at_ms is None or now_ms >= self.ready_at_ms

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> MediaRecord:
        return cls(
            id=int(row["id"]),
            account_id=int(row["account_id"]),
            status_id=row["status_id"],
            mime=row["mime"],
            ext=row["ext"],
            description=row["description"],
            width=row["width"],
            height=row["height"],
            created_at_ms=int(row["created_at_ms"]),
            ready_at_ms=row["ready_at_ms"],
        )


MEDIA_COLUMNS = (
    "id, account_id, status_id, mime, ext, description, width, height, created_at_ms, ready_at_ms"
)


@dataclass(frozen=True)
class NewStatus:
    account_id: int
    text: str
    created_at_ms: int
    origin: str
    spoiler_text: str = ""
    in_reply_to: StatusRecord | None = None
    visibility: str = "public"
    language: str | None = "en"
    sensitive: bool = False
    seed_key: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Page:
    """Timeline paging as Mastodon does it: `max_id`/`since_id` from the newest end,
    `min_id` from the oldest end (the page right after it)."""

    limit: int
    max_id: int | None = None
    since_id: int | None = None
    min_id: int | None = None
    offset: int = 0


class Statuses:
    def __init__(self, db: Database, domain: str | None = None) -> None:
        """`domain` is the instance's own: a mention `@user@domain` of it is local (None:
        only `@user` is)."""
        self.db = db
        self.domain = domain

    def insert(self, new: NewStatus, media_ids: list[int] | None = None) -> StatusRecord:
        """Store a status and attach media (call inside a transaction)."""
        status_id = next_id(self.db, "statuses", new.created_at_ms)
        parent = new.in_reply_to
        self.db.execute(
            "INSERT INTO statuses(id, account_id, text, search_text, spoiler_text, in_reply_to_id,"
            " in_reply_to_account_id, visibility, language, sensitive, created_at_ms, origin,"
            " seed_key, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                status_id,
                new.account_id,
                new.text,
                new.text.casefold(),
                new.spoiler_text,
                parent.id if parent else None,
                parent.account_id if parent else None,
                new.visibility,
                new.language,
                int(new.sensitive),
                new.created_at_ms,
                new.origin,
                new.seed_key,
                new.idempotency_key,
            ),
        )
        for position, media_id in enumerate(media_ids or []):
            self.db.execute(
                "UPDATE media SET status_id = ?, position = ? WHERE id = ?",
                (status_id, position, media_id),
            )
        record = self.get(status_id)
        assert record is not None
        self._index(record)
        return record

    def _index(self, record: StatusRecord) -> None:
        """Its tags for the tag timeline, and a notification for each local account it
        mentions, dated when the status was (a backdated seeded post's mention arrived
        back then too). Mastodon never notifies an author of their own mention."""
        for name in hashtags_in(record.text):
            self.db.execute(
                "INSERT OR IGNORE INTO status_tags(name, status_id) VALUES (?, ?)",
                (name, record.id),
            )
        for mention in mentions_in(record.text):
            if mention.domain is not None and mention.domain.lower() != (self.domain or "").lower():
                continue  # a remote account: its own server notifies it
            row = self.db.one("SELECT id FROM accounts WHERE username = ?", (mention.username,))
            if row is None or int(row["id"]) == record.account_id:
                continue
            self.db.execute(
                "INSERT INTO notifications(id, account_id, from_account_id, type, status_id,"
                " created_at_ms) VALUES (?, ?, ?, 'mention', ?, ?)",
                (
                    next_notification_id(self.db, record.created_at_ms),
                    int(row["id"]),
                    record.account_id,
                    record.id,
                    record.created_at_ms,
                ),
            )

    def index_all(self) -> None:
        """Index every stored status, oldest first: a file written before tags and
        notifications existed (schema version 3) gets them on open."""
        with self.db.transaction():
            self.db.execute("DELETE FROM status_tags")
            self.db.execute("DELETE FROM notifications")
            for row in self.db.all("SELECT * FROM statuses ORDER BY id"):
                self._index(StatusRecord.from_row(row))

    def get(self, status_id: int) -> StatusRecord | None:
        row = self.db.one("SELECT * FROM statuses WHERE id = ?", (status_id,))
        return None if row is None else StatusRecord.from_row(row)

    def by_seed_key(self, key: str) -> StatusRecord | None:
        row = self.db.one("SELECT * FROM statuses WHERE seed_key = ?", (key,))
        return None if row is None else StatusRecord.from_row(row)

    def of_account(
        self,
        account_id: int,
        page: Page,
        *,
        exclude_replies: bool = False,
        only_media: bool = False,
        tagged: str | None = None,
    ) -> list[StatusRecord]:
        clauses = ["s.account_id = ?"]
        params: list[object] = [account_id]
        if exclude_replies:
            # Mastodon keeps self-replies (threads) when excluding replies.
            clauses.append("(s.in_reply_to_id IS NULL OR s.in_reply_to_account_id = s.account_id)")
        if only_media:
            clauses.append("EXISTS (SELECT 1 FROM media m WHERE m.status_id = s.id)")
        if tagged:
            clauses.append("instr(s.search_text, ?) > 0")
            params.append("#" + tagged.casefold())
        return self._page(" AND ".join(clauses), params, page)

    def tagged(
        self, name: str, page: Page, *, only_media: bool = False, remote: bool = False
    ) -> list[StatusRecord]:
        """The tag timeline: public statuses carrying the hashtag `name` (lower case, no
        `#`), newest first. Everything here is local, so `remote` finds nothing."""
        clauses = [
            "s.visibility = 'public'",
            "EXISTS (SELECT 1 FROM status_tags t WHERE t.name = ? AND t.status_id = s.id)",
        ]
        if remote:
            clauses.append("0")
        if only_media:
            clauses.append("EXISTS (SELECT 1 FROM media m WHERE m.status_id = s.id)")
        return self._page(" AND ".join(clauses), [name], page)

    def search(self, query: SearchQuery, viewer_id: int, page: Page) -> list[StatusRecord]:
        where, params = to_sql(query, viewer_id)
        return self._page(where, params, page)

    def _page(self, where: str, params: list[object], page: Page) -> list[StatusRecord]:
        clauses, values = [where], list(params)
        if page.max_id is not None:
            clauses.append("s.id < ?")
            values.append(page.max_id)
        if page.since_id is not None:
            clauses.append("s.id > ?")
            values.append(page.since_id)
        if page.min_id is not None:
            clauses.append("s.id > ?")
            values.append(page.min_id)
        order = "ASC" if page.min_id is not None else "DESC"
        sql = (
            "SELECT s.* FROM statuses s JOIN accounts a ON a.id = s.account_id"  # noqa: S608
            f" WHERE {' AND '.join(clauses)} ORDER BY s.id {order} LIMIT ? OFFSET ?"
        )
        rows = self.db.all(sql, [*values, page.limit, page.offset])
        records = [StatusRecord.from_row(row) for row in rows]
        if order == "ASC":
            records.reverse()
        return records

    def posted(self, account_id: int | None = None) -> list[StatusRecord]:
        """Statuses created through the API (not seeded), oldest first."""
        if account_id is None:
            rows = self.db.all("SELECT * FROM statuses WHERE origin = 'api' ORDER BY id")
        else:
            rows = self.db.all(
                "SELECT * FROM statuses WHERE origin = 'api' AND account_id = ? ORDER BY id",
                (account_id,),
            )
        return [StatusRecord.from_row(row) for row in rows]

    def replies_counts(self, status_ids: list[int]) -> dict[int, int]:
        if not status_ids:
            return {}
        marks = ",".join("?" * len(status_ids))
        rows = self.db.all(
            f"SELECT in_reply_to_id AS parent, COUNT(*) AS n FROM statuses"  # noqa: S608
            f" WHERE in_reply_to_id IN ({marks}) GROUP BY in_reply_to_id",
            status_ids,
        )
        return {int(row["parent"]): int(row["n"]) for row in rows}

    def count_by_account(self, account_id: int) -> tuple[int, int | None]:
        """(statuses_count, created_at_ms of the latest status)."""
        row = self.db.one(
            "SELECT COUNT(*) AS n, MAX(created_at_ms) AS latest FROM statuses WHERE account_id = ?",
            (account_id,),
        )
        if row is None:
            return 0, None
        return int(row["n"]), row["latest"]

    # Media

    def add_media(
        self,
        account_id: int,
        mime: str,
        ext: str,
        data: bytes,
        description: str | None,
        width: int | None,
        height: int | None,
        at_ms: int,
        ready_at_ms: int | None = None,
    ) -> MediaRecord:
        media_id = next_id(self.db, "media", at_ms)
        self.db.execute(
            "INSERT INTO media(id, account_id, mime, ext, data, description, width, height,"
            " created_at_ms, ready_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (media_id, account_id, mime, ext, data, description, width, height, at_ms, ready_at_ms),
        )
        record = self.media(media_id)
        assert record is not None
        return record

    def media(self, media_id: int) -> MediaRecord | None:
        row = self.db.one(f"SELECT {MEDIA_COLUMNS} FROM media WHERE id = ?", (media_id,))  # noqa: S608
        return None if row is None else MediaRecord.from_row(row)

    def media_bytes(self, media_id: int) -> tuple[str, bytes] | None:
        row = self.db.one("SELECT mime, data FROM media WHERE id = ?", (media_id,))
        return None if row is None else (row["mime"], bytes(row["data"]))

    def media_of(self, status_ids: list[int]) -> dict[int, list[MediaRecord]]:
        if not status_ids:
            return {}
        marks = ",".join("?" * len(status_ids))
        rows = self.db.all(
            f"SELECT {MEDIA_COLUMNS} FROM media WHERE status_id IN ({marks})"  # noqa: S608
            " ORDER BY status_id, position",
            status_ids,
        )
        found: dict[int, list[MediaRecord]] = {}
        for row in rows:
            record = MediaRecord.from_row(row)
            found.setdefault(int(row["status_id"]), []).append(record)
        return found
