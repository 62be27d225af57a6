"""The schema: created on first open, idempotent, safe when several openers race."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from social_pipelines.clock import utcnow
from social_pipelines.errors import ConfigError
from social_pipelines.store.engine import create_engine, normalise_url
from social_pipelines.store.migrate import HEAD, VERSION_TABLE, SchemaNewerThanCode, ensure_schema
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import (
    at_once_in_threads,
    make_draft,
    open_store_at_once,
    revision_rows,
    spawn_context,
)

TABLES = {"deliveries", "delivery_attempts", VERSION_TABLE}


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def _wal_file_without_schema(store_url: str) -> None:
    """On SQLite, make the file exist in WAL mode, still without any table.

    The racing openers below then test the schema creation itself. Two openers of a file
    that is not even in WAL mode yet hit a separate bug, tested on its own
    (`test_opening_a_new_sqlite_file_waits_for_a_concurrent_writer`).
    """
    if not store_url.startswith("sqlite"):
        return
    connection = sqlite3.connect(sa.make_url(store_url).database)
    try:
        assert connection.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    finally:
        connection.close()


def test_first_open_creates_the_schema_and_its_version_row(store_url: str) -> None:
    bare = create_engine(store_url)
    try:
        assert not TABLES & _tables(bare)
    finally:
        bare.dispose()

    store = StateStore(store_url)
    try:
        assert _tables(store.engine) >= TABLES
        assert revision_rows(store.engine) == [HEAD]
        assert store.backend == ("sqlite" if store_url.startswith("sqlite") else "postgresql")
    finally:
        store.dispose()


def test_opening_again_changes_nothing_and_keeps_rows(store_url: str) -> None:
    first = StateStore(store_url)
    first.ledger.plan(make_draft("kept"))
    first.dispose()

    second = StateStore(store_url)
    try:
        # ensure_schema reports the revision it found: already current, nothing to do.
        assert ensure_schema(second.engine) == HEAD
        assert revision_rows(second.engine) == [HEAD]
        record = second.ledger.get(make_draft("kept").delivery_id)
        assert record is not None and record.subject == "kept"
    finally:
        second.dispose()


def test_a_newer_schema_is_refused(store_url: str) -> None:
    store = StateStore(store_url)
    try:
        with store.engine.begin() as connection:
            # What a newer release's upgrade leaves: a revision this code has no file for.
            connection.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '9001'"))
        with pytest.raises(SchemaNewerThanCode, match=r"'9001'.*upgrade social_pipelines"):
            ensure_schema(store.engine)
        with pytest.raises(SchemaNewerThanCode, match="'9001'"):
            StateStore(store_url)
    finally:
        store.dispose()


def test_threads_opening_a_new_store_at_once_all_succeed(store_url: str) -> None:
    _wal_file_without_schema(store_url)
    openers = 4
    stores, errors = at_once_in_threads(openers, lambda: StateStore(store_url))
    try:
        assert errors == []
        assert len(stores) == openers
        assert revision_rows(stores[0].engine) == [HEAD]
    finally:
        for opened in stores:
            opened.dispose()


def test_processes_opening_a_new_store_at_once_all_succeed(store_url: str) -> None:
    _wal_file_without_schema(store_url)
    context = spawn_context()
    barrier = context.Barrier(2)
    queue = context.Queue()
    processes = [
        context.Process(target=open_store_at_once, args=(store_url, barrier, queue))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [queue.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert outcomes == ["ok", "ok"]
    assert [process.exitcode for process in processes] == [0, 0]
    store = StateStore(store_url)
    try:
        assert revision_rows(store.engine) == [HEAD]
    finally:
        store.dispose()


def _hold_a_write_lock(path: Path, *, wal: bool, seconds: float) -> threading.Timer:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    if wal:
        holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("CREATE TABLE someone_elses (x)")

    def release() -> None:
        holder.execute("COMMIT")
        holder.close()

    timer = threading.Timer(seconds, release)
    timer.start()
    return timer


def test_opening_waits_for_a_concurrent_writer_instead_of_failing(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    timer = _hold_a_write_lock(path, wal=True, seconds=0.3)
    try:
        started = utcnow()
        store = StateStore(f"sqlite:///{path}")
        waited = (utcnow() - started).total_seconds()
        store.dispose()
    finally:
        timer.join()
    assert waited >= 0.25  # it waited for the writer (busy_timeout), then went ahead


def test_opening_a_new_sqlite_file_waits_for_a_concurrent_writer(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    timer = _hold_a_write_lock(path, wal=False, seconds=0.3)
    try:
        started = utcnow()
        store = StateStore(f"sqlite:///{path}")
        waited = (utcnow() - started).total_seconds()
    finally:
        timer.join()
    try:
        assert waited >= 0.25  # it waited for the writer, then created its schema
        assert revision_rows(store.engine) == [HEAD]
        tables = sa.inspect(store.engine).get_table_names()
        assert "someone_elses" in tables  # the other writer's work is kept
    finally:
        store.dispose()


def test_open_returns_one_store_per_process_and_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cached.db'}"
    other = f"sqlite:///{tmp_path / 'other.db'}"
    try:
        first = StateStore.open(url)
        assert StateStore.open(url) is first
        assert StateStore.open(other) is not first
        StateStore.close(url)
        assert StateStore.open(url) is not first  # closed and forgotten: opened afresh
    finally:
        StateStore.close(url)
        StateStore.close(other)


def test_sqlite_store_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "state.db"
    store = StateStore(f"sqlite:///{path}")
    try:
        assert path.exists()
        with store.engine.connect() as connection:
            mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
        assert mode == "wal"
    finally:
        store.dispose()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db/social", "postgresql+psycopg://u:p@db/social"),
        ("postgres://u:p@db/social", "postgresql+psycopg://u:p@db/social"),
        ("postgresql+psycopg://u@db/x", "postgresql+psycopg://u@db/x"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_normalise_url_routes_postgres_to_psycopg3(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("mysql://u:p@db/social", "'mysql'"), ("not a url at all", "not a database URL")],
)
def test_unsupported_database_urls_name_the_variable(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match="SOCIAL_DATABASE_URL") as caught:
        create_engine(url)
    assert fragment in str(caught.value)
