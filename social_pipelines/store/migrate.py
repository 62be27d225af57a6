"""Bringing a store's schema up to date with Alembic, automatically, at every open.

Opening is cheap when there is nothing to do: one query reads the store's revision, and
only a store behind `HEAD` loads Alembic and its revisions (`migrations/`). Those run under
a lock (an advisory lock on PostgreSQL, SQLite's write lock taken at BEGIN), in one
transaction, and look at the store again once they hold it: of several processes opening
a store at once, the first upgrades it and the others find it done.

- A new store gets every revision, 0001 to `HEAD`: their SQL, which Alembic's offline mode
  renders once per process and dialect, then replayed for each new store (running each
  revision's operations again cost more than the rest of opening it).
- A store at an older revision runs the revisions after it, online.
- A store made before Alembic kept a version number in `social_schema_version` (1 to 3):
  it is adopted, stamped with the revision that built the same schema, then upgraded like
  any other, and its old version table is dropped (one bookkeeping, not two).
- A store at a revision this code does not know was upgraded by a newer release: refused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, ProgrammingError

from social_pipelines.store.engine import for_writing

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision in `migrations/versions`; a test checks that it is Alembic's head.
HEAD = "0008"
# Not Alembic's default `alembic_version`: the store may share a PostgreSQL database with
# Dagster's own storage, which keeps its revision there.
VERSION_TABLE = "social_alembic_version"
MIGRATIONS = Path(__file__).with_name("migrations")
# Before Alembic: the table with the version number, and the revision that builds the
# schema each number stood for.
LEGACY_VERSION_TABLE = "social_schema_version"
LEGACY_REVISIONS = {1: "0001", 2: "0002", 3: "0003"}
_LOCK_KEY = 0x50C1A1  # an arbitrary constant naming this project's schema lock
_CURRENT = sa.text(f"SELECT version_num FROM {VERSION_TABLE}")  # noqa: S608 - a constant
_LEGACY = sa.text(f"SELECT version FROM {LEGACY_VERSION_TABLE}")  # noqa: S608 - a constant


class SchemaNewerThanCode(RuntimeError):
    """The store was upgraded by a newer release: this one cannot know its tables."""


def ensure_schema(engine: sa.Engine) -> str | None:
    """Bring the store to `HEAD`; returns the revision it was at (None: a new store).

    A store from before Alembic reports the revision it was adopted at.
    """
    found = _read_revision(engine)
    if found == HEAD:
        return found
    return _upgrade(engine)


@dataclass(frozen=True)
class StoredSchema:
    """Where a store's schema stands, read without changing it (`doctor`)."""

    revision: str | None  # None: no revision table (a new store, or one from before Alembic)
    legacy_version: int | None = None  # the pre-Alembic version number, if that is all it has

    @property
    def is_new(self) -> bool:
        return self.revision is None and self.legacy_version is None

    @property
    def is_current(self) -> bool:
        return self.revision == HEAD

    @property
    def is_known(self) -> bool:
        """Whether this code can upgrade it (False: a newer release upgraded it)."""
        if self.legacy_version is not None:
            return self.legacy_version in LEGACY_REVISIONS
        return self.revision is None or self.revision in _known_revisions()

    def describe(self) -> str:
        if self.is_new:
            return "a new store (no tables yet)"
        if self.revision is None:
            return f"schema version {self.legacy_version} (from before Alembic)"
        return f"revision {self.revision}"


def stored_schema(engine: sa.Engine) -> StoredSchema:
    """The store's revision as it is, nothing upgraded: what `ensure_schema` would start
    from. Raises SQLAlchemy's OperationalError when the store cannot be reached."""
    with engine.connect() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        if VERSION_TABLE in tables:
            return StoredSchema(connection.execute(_CURRENT).scalar())
        if LEGACY_VERSION_TABLE in tables:
            return StoredSchema(None, connection.execute(_LEGACY).scalar_one())
    return StoredSchema(None)


def _read_revision(engine: sa.Engine) -> str | None:
    """The one query an up-to-date store costs; None when there is no version table yet
    (a new store, or one from before Alembic) or it cannot be read: the locked path then
    looks properly."""
    try:
        with engine.connect() as connection:
            return connection.execute(_CURRENT).scalar()
    except (OperationalError, ProgrammingError):
        return None


def _upgrade(engine: sa.Engine) -> str | None:
    from alembic import command

    with for_writing(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        tables = set(sa.inspect(connection).get_table_names())
        if VERSION_TABLE in tables:
            found = connection.execute(_CURRENT).scalar()
            if found == HEAD:
                return found  # another process upgraded it while we waited for the lock
            _refuse_unknown(found)
        elif LEGACY_VERSION_TABLE in tables:
            found = _adopt_legacy(connection)
        else:
            for statement in _new_store_script(connection.dialect.name):
                connection.exec_driver_sql(statement).close()
            return None
        command.upgrade(_config(connection=connection), HEAD)
        return found


def _config(**attributes: object) -> Config:
    """Alembic's configuration, built in code: there is no alembic.ini to read."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes.update(attributes)
    return config


@functools.cache
def _known_revisions() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(
        script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()
    )


def _refuse_unknown(found: str | None) -> None:
    if found not in _known_revisions():
        raise SchemaNewerThanCode(
            f"the state store is at schema revision {found!r}, which this code does not "
            f"know (its newest is {HEAD!r}): the store was upgraded by a newer release; "
            "upgrade social_pipelines"
        )


class _Statements:
    """An output buffer for Alembic's offline mode, which writes one statement (or a
    `--` comment) per `write`."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def write(self, text: str) -> None:
        statement = text.strip().removesuffix(";").strip()
        if statement and not statement.startswith("--"):
            self.statements.append(statement)

    def flush(self) -> None:
        pass


@functools.cache
def _new_store_script(dialect: str) -> tuple[str, ...]:
    """Every revision's SQL for a new store on `dialect`, in order, version rows included:
    rendered by Alembic's offline mode once per process."""
    from alembic import command

    output = _Statements()
    command.upgrade(_config(dialect=dialect, output=output), HEAD, sql=True)
    return tuple(output.statements)


def _adopt_legacy(connection: sa.Connection) -> str:
    """Stamp a store from before Alembic with the revision of its schema version, and drop
    the old version table."""
    from alembic import command

    legacy = connection.execute(_LEGACY).scalar_one()
    revision = LEGACY_REVISIONS.get(legacy)
    if revision is None:
        raise SchemaNewerThanCode(
            f"the state store is at schema version {legacy}, which this code does not know "
            f"(it adopts versions {min(LEGACY_REVISIONS)} to {max(LEGACY_REVISIONS)}): "
            "upgrade social_pipelines"
        )
    command.stamp(_config(connection=connection), revision)
    connection.execute(sa.text(f"DROP TABLE {LEGACY_VERSION_TABLE}"))
    return revision
