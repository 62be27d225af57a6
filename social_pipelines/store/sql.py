"""Statement builders every store module shares, the same on SQLite and PostgreSQL."""

from __future__ import annotations

import functools

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


@functools.cache
def _insert_missing(table: sa.Table, dialect: str) -> sa.Insert:
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    else:
        raise ValueError(
            f"no insert-if-missing on {dialect!r}: the store runs on sqlite, postgresql"
        )
    # SQLAlchemy leaves an INSERT's rowcount unset (-1 with psycopg) unless asked for it.
    return statement.execution_options(preserve_rowcount=True)


def insert_missing(connection: sa.Connection, table: sa.Table, values: dict[str, object]) -> bool:
    """Insert a row unless one with the same key exists; True when this call inserted it.

    One statement (`INSERT ... ON CONFLICT DO NOTHING`), so a racing inserter neither fails
    nor aborts the caller's transaction (a failed INSERT does on PostgreSQL), and the row
    that was there first is kept as it is. Built once per table and dialect: it is on the
    hot path (every plan).
    """
    return connection.execute(_insert_missing(table, connection.dialect.name), values).rowcount == 1
