"""The budgets platforms announce, per bucket, and the requests in flight against them.

The SQL behind `resilience.budget.AnnouncedBudget`, which keeps the rules (when a request
may go, how an answer merges in). These functions take the caller's connection: a
decision reads and writes in one transaction, under `lock_buckets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from social_pipelines.store.schema import rate_budgets, rate_permits
from social_pipelines.store.sql import insert_missing

_b = rate_budgets.c
_p = rate_permits.c
# Read by every request of every process: built once.
_BUDGETS = sa.select(_b.bucket, _b.remaining, _b.reset_at).where(
    _b.bucket.in_(sa.bindparam("keys", expanding=True))
)
_IN_FLIGHT = (
    sa.select(_p.bucket, sa.func.count())
    .where(_p.bucket.in_(sa.bindparam("keys", expanding=True)), _p.expires_at > sa.bindparam("now"))
    .group_by(_p.bucket)
)


@dataclass(frozen=True)
class Announced:
    """The lowest count a platform announced for a bucket's window, and its reset."""

    remaining: int
    reset_at: datetime


def lock_buckets(connection: sa.Connection, keys: Sequence[str]) -> None:
    """Serialise budget decisions per bucket for the rest of the transaction (SQLite's
    write lock already does). Sorted, so two callers never wait on each other in a cycle."""
    if connection.dialect.name == "postgresql":
        for key in sorted(keys):
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"rate:{key}"}
            )


def announced(connection: sa.Connection, keys: Sequence[str]) -> dict[str, Announced]:
    """What was announced for each bucket that has a row, whatever window it was for."""
    return {
        row.bucket: Announced(row.remaining, row.reset_at)
        for row in connection.execute(_BUDGETS, {"keys": list(keys)})
    }


def in_flight(connection: sa.Connection, keys: Sequence[str], now: datetime) -> dict[str, int]:
    """Unexpired permits per bucket: requests sent and not yet answered."""
    return {
        row[0]: row[1] for row in connection.execute(_IN_FLIGHT, {"keys": list(keys), "now": now})
    }


def add_permit(
    connection: sa.Connection,
    permit: str,
    keys: Sequence[str],
    *,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Count one request in flight in every bucket of `keys` until it is answered, or
    until `expires_at` if nobody ever says (its process died)."""
    if not keys:
        return  # an endpoint class with no bucket of its own counts nowhere
    connection.execute(
        rate_permits.insert(),
        [
            {"permit": permit, "bucket": key, "taken_at": now, "expires_at": expires_at}
            for key in keys
        ],
    )


def drop_permit(connection: sa.Connection, permit: str) -> None:
    """The request is answered: it is in flight no longer."""
    connection.execute(rate_permits.delete().where(_p.permit == permit))


def lower(connection: sa.Connection, key: str, remaining: int, now: datetime) -> None:
    """Bring a bucket's count down to `remaining` (at least 0); never up."""
    connection.execute(
        rate_budgets.update()
        .where(_b.bucket == key, _b.remaining > remaining)
        .values(remaining=max(0, remaining), updated_at=now)
    )


def put(
    connection: sa.Connection,
    key: str,
    *,
    announced_limit: int | None,
    remaining: int,
    reset_at: datetime,
    now: datetime,
) -> None:
    """What a new window's first answer said replaces whatever the bucket held."""
    values = {
        "announced_limit": announced_limit,
        "remaining": remaining,
        "reset_at": reset_at,
        "updated_at": now,
    }
    if not insert_missing(connection, rate_budgets, {"bucket": key, **values}):
        connection.execute(rate_budgets.update().where(_b.bucket == key).values(**values))
