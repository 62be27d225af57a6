"""Alembic at open: stores from before Alembic are adopted with their data, the revisions
build `schema.py`, a newer store is refused, and an up-to-date open costs one query."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from social_pipelines.models import DeliveryState
from social_pipelines.store import rate_blocks, rate_budgets
from social_pipelines.store.breakers import BreakerRow
from social_pipelines.store.engine import create_engine
from social_pipelines.store.migrate import (
    HEAD,
    LEGACY_VERSION_TABLE,
    MIGRATIONS,
    VERSION_TABLE,
    SchemaNewerThanCode,
    ensure_schema,
)
from social_pipelines.store.schema import metadata
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import (
    LEASE,
    at_once_in_threads,
    make_draft,
    revision_rows,
)
from social_pipelines_tests.store.legacy import build_legacy_store, legacy_engine

PLANNED_AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LATER = datetime(2999, 1, 1, tzinfo=UTC)  # blocks and budgets still running when read


def _fill_legacy_store(url: str) -> None:
    """Rows in every table, written with plain SQL the way the v3 release stored them."""
    engine = legacy_engine(url)
    ts = {"planned": PLANNED_AT, "later": LATER}
    if engine.dialect.name == "sqlite":  # stored naive on SQLite, as UtcDateTime does
        ts = {name: value.replace(tzinfo=None) for name, value in ts.items()}
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO deliveries (delivery_id, platform, account_key, kind, subject,"
                    " campaign, account, state, text, content_hash, remote_id, remote_url,"
                    " attempts, created_at, updated_at, sent_at) VALUES ('d-sent', 'mastodon',"
                    " '109@social.example', 'reply', 'post-1', 'mentions', 'brand', 'sent',"
                    " 'Thanks!', 'hash', '42', 'https://social.example/@brand/42', 1,"
                    " :planned, :planned, :planned)"
                ),
                ts,
            )
            connection.execute(
                sa.text(
                    "INSERT INTO delivery_attempts (delivery_id, attempt, run_id, started_at,"
                    " finished_at, outcome) VALUES ('d-sent', 1, 'run-a', :planned, :planned,"
                    " 'sent')"
                ),
                ts,
            )
            connection.execute(
                sa.text(
                    "INSERT INTO circuit_breakers (name, state, fail_counter, success_counter,"
                    " opened_at, updated_at) VALUES ('mastodon:brand', 'open', 5, 0, :planned,"
                    " :planned)"
                ),
                ts,
            )
            connection.execute(
                sa.text(
                    "INSERT INTO rate_blocks (bucket, blocked_until, reason, updated_at)"
                    " VALUES ('mastodon:brand:account', :later, 'HTTP 429', :planned)"
                ),
                ts,
            )
            connection.execute(
                sa.text(
                    "INSERT INTO rate_budgets (bucket, announced_limit, remaining, reset_at,"
                    " updated_at) VALUES ('mastodon:brand:account', 300, 7, :later, :planned)"
                ),
                ts,
            )
    finally:
        engine.dispose()


def _tables(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_a_v3_store_is_adopted_and_upgraded_to_head_with_its_data(store_url: str) -> None:
    build_legacy_store(store_url, version=3)
    _fill_legacy_store(store_url)

    engine = create_engine(store_url)
    try:
        assert ensure_schema(engine) == "0003"  # adopted at the revision of its version
        assert revision_rows(engine) == [HEAD]
        assert LEGACY_VERSION_TABLE not in _tables(engine)
        assert ensure_schema(engine) == HEAD  # and from then on, nothing to do
    finally:
        engine.dispose()

    store = StateStore(store_url)
    try:
        record = store.ledger.get("d-sent")
        assert record is not None
        assert (record.state, record.account, record.remote_id, record.attempts) == (
            DeliveryState.SENT,
            "brand",
            "42",
            1,
        )
        assert record.sent_at == PLANNED_AT
        assert (record.reference, record.staged_id) == (None, None)
        assert [row.outcome for row in store.ledger.attempts("d-sent")] == ["sent"]
        breaker = BreakerRow(store.engine, "mastodon:brand").read()
        assert (breaker.state, breaker.fail_counter, breaker.opened_at) == ("open", 5, PLANNED_AT)
        keys = ["mastodon:brand:account"]
        assert rate_blocks.blocked_until(store.engine, keys, PLANNED_AT) == LATER
        with store.engine.connect() as connection:
            budget = rate_budgets.announced(connection, keys)
        assert budget == {keys[0]: rate_budgets.Announced(7, LATER)}
        # The new columns work on an adopted store: plan with a reference, stage an id.
        draft = make_draft("post-2", reference="outbox-7/mastodon")
        claim = store.ledger.plan_and_claim(draft, run_id="run-b", lease=LEASE)
        staged = store.ledger.record_staged(draft.delivery_id, "run-b", "media-1")
        assert staged is not None
        assert (staged.reference, staged.staged_id) == ("outbox-7/mastodon", "media-1")
        assert claim.record.reference == "outbox-7/mastodon"
    finally:
        store.dispose()


@pytest.mark.parametrize("version", [1, 2])
def test_older_stores_are_adopted_at_their_revision_and_upgraded(
    store_url: str, version: int
) -> None:
    build_legacy_store(store_url, version=version)
    engine = create_engine(store_url)
    try:
        assert ensure_schema(engine) == f"000{version}"
        assert revision_rows(engine) == [HEAD]
        assert _tables(engine) >= {"rate_budgets", "rate_permits", "circuit_breakers"}
    finally:
        engine.dispose()
    # Version 1 had no account column: the upgrade adds it, and plans fill it.
    upgraded = StateStore(store_url)
    try:
        record = upgraded.ledger.plan(make_draft())
        assert record.account == "brand"
    finally:
        upgraded.dispose()


def test_a_legacy_version_newer_than_adoption_knows_is_refused(store_url: str) -> None:
    build_legacy_store(store_url, version=3)
    engine = legacy_engine(store_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE social_schema_version SET version = 4")
    finally:
        engine.dispose()
    with pytest.raises(SchemaNewerThanCode, match="schema version 4"):
        StateStore(store_url)


def test_threads_opening_a_v3_store_at_once_adopt_it_once(store_url: str) -> None:
    build_legacy_store(store_url, version=3)
    _fill_legacy_store(store_url)
    openers = 4
    engines = [create_engine(store_url) for _ in range(openers)]
    unused = list(engines)  # one engine each, as separate processes would have

    def open_it() -> str | None:
        return ensure_schema(unused.pop())

    try:
        found, errors = at_once_in_threads(openers, open_it)
    finally:
        for engine in engines:
            engine.dispose()
    assert errors == []
    # One of them adopted it; the others waited for the lock and found it done.
    assert sorted(found, key=str) == ["0003"] + [HEAD] * (openers - 1)
    store = StateStore(store_url)
    try:
        assert revision_rows(store.engine) == [HEAD]
        assert [record.delivery_id for record in store.ledger.list()] == ["d-sent"]
    finally:
        store.dispose()


def test_head_is_the_newest_revision() -> None:
    scripts = ScriptDirectory(str(MIGRATIONS))
    assert scripts.get_heads() == [HEAD]
    revisions = [script.revision for script in scripts.walk_revisions()]
    assert revisions == ["0008", "0007", "0006", "0005", "0004", "0003", "0002", "0001"]


def test_the_revisions_build_the_schema_the_code_uses(store_url: str) -> None:
    store = StateStore(store_url)
    try:
        with store.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            differences = compare_metadata(context, metadata)
    finally:
        store.dispose()
    if store_url.startswith("sqlite"):
        # SQLite does not enforce VARCHAR lengths, so 0002 widens the outcome on PostgreSQL
        # only; a new SQLite file still declares the first width.
        differences = [d for d in differences if not _widened(d)]
    assert differences == []


def _widened(difference: object) -> bool:
    """0002's attempt outcome and 0006's staged id, widened on PostgreSQL only."""
    return (
        isinstance(difference, list)
        and difference[0][0] == "modify_type"
        and difference[0][2:4] in (("delivery_attempts", "outcome"), ("deliveries", "staged_id"))
    )


def test_opening_an_up_to_date_store_runs_one_query(store_url: str) -> None:
    StateStore(store_url).dispose()
    engine = create_engine(store_url)
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql)
    )
    try:
        assert ensure_schema(engine) == HEAD
    finally:
        engine.dispose()
    queries = [sql for sql in statements if sql != "BEGIN"]  # SQLite's read transaction
    assert queries == [f"SELECT version_num FROM {VERSION_TABLE}"]


def test_a_new_store_gets_every_revision_in_order_under_the_lock(store_url: str) -> None:
    engine = create_engine(store_url)
    statements: list[str] = []
    sa.event.listen(
        engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql)
    )
    try:
        assert ensure_schema(engine) is None  # a new store: nothing was there
    finally:
        engine.dispose()
    # A change of each revision, 0001 to 0008, in that order.
    marks = [
        "CREATE TABLE deliveries",
        "ADD COLUMN account",
        "CREATE TABLE rate_budgets",
        "ADD COLUMN staged_id",
        "CREATE TABLE posts",
        "CREATE TABLE account_tokens",
        "CREATE TABLE alerts",
        "CREATE TABLE step_outputs",
    ]
    positions = [next(i for i, sql in enumerate(statements) if mark in sql) for mark in marks]
    assert positions == sorted(positions)
    if store_url.startswith("postgresql"):
        assert any("pg_advisory_xact_lock" in sql for sql in statements[: positions[0]])
