"""Creating and upgrading the schema, automatically and idempotently.

Every process calls `ensure_schema` on start; under a lock (an advisory lock on PostgreSQL,
a write transaction on SQLite) only the first one changes anything, and the version row
records how far the schema has been brought.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import account_state_index, metadata, schema_version


def _columns(connection: sa.Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(connection).get_columns(table)}


def _v2_account_and_wider_outcome(connection: sa.Connection) -> None:
    """v2: deliveries remember the account's name; attempt outcomes fit `superseded:...`;
    an index for the quota counts."""
    if "account" not in _columns(connection, "deliveries"):
        connection.execute(
            sa.text("ALTER TABLE deliveries ADD COLUMN account VARCHAR(64) NOT NULL DEFAULT ''")
        )
    account_state_index.create(connection, checkfirst=True)
    if connection.dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        connection.execute(
            sa.text("ALTER TABLE delivery_attempts ALTER COLUMN outcome TYPE VARCHAR(32)")
        )


# Upgrades after the first version, in order: (version reached, step). A step receives the
# connection inside the schema transaction. Tables new in a version are created by
# `create_all` itself (v2 also added circuit_breakers, breaker_events and rate_blocks);
# steps are for changes to tables that already exist.
def _v3_announced_rate_budgets(connection: sa.Connection) -> None:
    """v3: rate_budgets and rate_permits, new tables that `create_all` makes; nothing to
    change in the tables that exist."""


UPGRADES: list[tuple[int, Callable[[sa.Connection], None]]] = [
    (2, _v2_account_and_wider_outcome),
    (3, _v3_announced_rate_budgets),
]
CURRENT_VERSION = UPGRADES[-1][0]
_LOCK_KEY = 0x50C1A1  # an arbitrary constant naming this project's schema lock


def _current_version(connection: sa.Connection) -> int:
    row = connection.execute(sa.select(schema_version.c.version)).first()
    return row.version if row else 0


def ensure_schema(engine: sa.Engine) -> int:
    """Bring the store to `CURRENT_VERSION`; returns the version found before."""
    with for_writing(engine).begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        metadata.create_all(connection, checkfirst=True)
        found = _current_version(connection)
        if found > CURRENT_VERSION:
            raise RuntimeError(
                f"the state store is at schema version {found}, newer than this code "
                f"({CURRENT_VERSION}): upgrade social_pipelines"
            )
        for version, step in UPGRADES:
            if 0 < found < version:
                step(connection)
        if found == 0:
            connection.execute(schema_version.insert().values(id=1, version=CURRENT_VERSION))
        elif found < CURRENT_VERSION:
            connection.execute(schema_version.update().values(version=CURRENT_VERSION))
        return found
