"""The sandbox's SQLite file: schema, transactions, settings and counters.

Everything the sandbox knows lives here so that it survives a restart (or a SIGKILL) the
way a real platform's state does. The server is one asyncio process and every call below is
synchronous with no await inside a transaction, so a transaction is also atomic with respect
to every other request the process is serving; `BEGIN IMMEDIATE` additionally keeps it atomic
against another process opening the same file (tools, tests reading the db).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# 2: media.ready_at_ms (uploads still processing); added to older files on open.
# 3: status_tags and notifications (hashtag timelines, mentions); an older file's statuses
#    are indexed into them when it is opened (`Database.previous_version` says so).
SCHEMA_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    display_name TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    token TEXT NOT NULL UNIQUE,
    bot INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS statuses (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    text TEXT NOT NULL,
    search_text TEXT NOT NULL,
    spoiler_text TEXT NOT NULL DEFAULT '',
    in_reply_to_id INTEGER,
    in_reply_to_account_id INTEGER,
    visibility TEXT NOT NULL,
    language TEXT,
    sensitive INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('api', 'seed')),
    seed_key TEXT UNIQUE,
    idempotency_key TEXT
);
CREATE INDEX IF NOT EXISTS statuses_by_account ON statuses(account_id, id);
CREATE INDEX IF NOT EXISTS statuses_by_parent ON statuses(in_reply_to_id);
CREATE INDEX IF NOT EXISTS statuses_by_origin ON statuses(origin, id);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    status_id INTEGER,
    position INTEGER NOT NULL DEFAULT 0,
    mime TEXT NOT NULL,
    ext TEXT NOT NULL,
    data BLOB NOT NULL,
    description TEXT,
    width INTEGER,
    height INTEGER,
    created_at_ms INTEGER NOT NULL,
    ready_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS media_by_status ON media(status_id, position);
CREATE TABLE IF NOT EXISTS status_tags (
    name TEXT NOT NULL,
    status_id INTEGER NOT NULL REFERENCES statuses(id),
    PRIMARY KEY (name, status_id)
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    from_account_id INTEGER NOT NULL REFERENCES accounts(id),
    type TEXT NOT NULL,
    status_id INTEGER REFERENCES statuses(id),
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_by_account ON notifications(account_id, id);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    account_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    status_id INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (account_id, key)
);
CREATE TABLE IF NOT EXISTS rate_windows (
    bucket TEXT NOT NULL,
    window_no INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (bucket, window_no)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Database:
    """One connection, used only from the event loop thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # Autocommit mode: transactions are explicit (`transaction()`), never implicit.
        self.conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA busy_timeout=5000")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self._depth = 0
        # The schema version the file had before this open (0: a new file, or one from
        # before versions were recorded); below SCHEMA_VERSION, the sandbox backfills.
        self.previous_version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        with self.transaction():
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    self.conn.execute(statement)
            columns = {row["name"] for row in self.conn.execute("PRAGMA table_info(media)")}
            if "ready_at_ms" not in columns:  # a file written before version 2
                self.conn.execute("ALTER TABLE media ADD COLUMN ready_at_ms INTEGER")
            self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield self.conn
            finally:
                self._depth -= 1
            return
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")
        finally:
            self._depth = 0

    def execute(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, params).fetchall())

    # Settings: small JSON documents (fault settings, rate-limit configuration).

    def get_setting(self, name: str) -> Any:
        row = self.one("SELECT value FROM settings WHERE name = ?", (name,))
        return None if row is None else json.loads(row["value"])

    def set_setting(self, name: str, value: Any) -> None:
        self.execute(
            "INSERT INTO settings(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, json.dumps(value)),
        )

    # Counters: requests, violations, faults by kind...

    def incr(self, name: str, by: int = 1) -> None:
        self.execute(
            "INSERT INTO counters(name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
            (name, by),
        )

    def counter(self, name: str) -> int:
        row = self.one("SELECT value FROM counters WHERE name = ?", (name,))
        return 0 if row is None else int(row["value"])

    def counters(self, prefix: str = "") -> dict[str, int]:
        rows = self.all(
            "SELECT name, value FROM counters WHERE substr(name, 1, ?) = ?",
            (len(prefix), prefix),
        )
        return {row["name"][len(prefix) :]: int(row["value"]) for row in rows}
