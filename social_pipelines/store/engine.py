"""Opening the state store: one engine per URL, tuned for each backend."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from social_pipelines.errors import ConfigError


def normalise_url(url: str) -> str:
    """Route plain `postgresql://` URLs to psycopg 3, the driver the project ships."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("postgres://"):
        return "postgresql+psycopg://" + url[len("postgres://") :]
    return url


BUSY_TIMEOUT_SECONDS = 30.0


def _switch_to_wal(cursor: Any) -> None:
    """WAL lets readers (the UI, a sensor) run beside the writer.

    Switching a file to WAL needs it to itself, and SQLite answers "database is locked" at
    once (no busy handler) while another connection writes: wait and try again. Once the
    file is in WAL mode, which persists, this is a single read.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return  # "wal", or "memory" for an in-memory database, which cannot use WAL
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout makes a concurrent writer wait instead of failing with "locked".
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


WRITE_OPTION = "social_write"


def _begin_sqlite(connection: sa.Connection) -> None:
    immediate = connection.get_execution_options().get(WRITE_OPTION, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def for_writing(engine: sa.Engine) -> sa.Engine:
    """The same engine (and pool), marked so its transactions take SQLite's write lock
    at BEGIN. Use it for every transaction that writes; plain `engine` for reads."""
    return engine.execution_options(**{WRITE_OPTION: True})


def create_engine(url: str) -> sa.Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise ConfigError(f"SOCIAL_DATABASE_URL is not a database URL: {error}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; issue it ourselves: IMMEDIATE
        # (the write lock up front, so a read-then-write cannot deadlock) for writing
        # transactions, a plain BEGIN for reads so they never queue behind writers.
        event.listen(engine, "begin", _begin_sqlite)

        @event.listens_for(engine, "connect")
        def _no_implicit_begin(dbapi_connection: Any, _record: object) -> None:
            dbapi_connection.isolation_level = None

        return engine
    if parsed.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    raise ConfigError(
        f"SOCIAL_DATABASE_URL uses {parsed.get_backend_name()!r}; allowed: sqlite, postgresql"
    )
