"""Blocked-until rows: a bucket the platform told us to leave alone until a time.

pyrate-limiter has no shared way to block a bucket, so a 429's Retry-After or a reset
header lands here, where every process looks before it takes a slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from social_pipelines.store.schema import rate_blocks
from social_pipelines.store.sql import insert_missing

_r = rate_blocks.c
# Asked before every request: built once (building it per call cost more than running it).
_BLOCKED_UNTIL = sa.select(sa.func.max(_r.blocked_until)).where(
    _r.bucket.in_(sa.bindparam("keys", expanding=True)),
    _r.blocked_until > sa.bindparam("now"),
)
_LENGTHEN = (
    rate_blocks.update()
    .where(_r.bucket == sa.bindparam("key"), _r.blocked_until < sa.bindparam("until"))
    .values(
        blocked_until=sa.bindparam("until"),
        reason=sa.bindparam("reason"),
        updated_at=sa.bindparam("now"),
    )
)


def blocked_until(engine: sa.Engine, keys: Sequence[str], now: datetime) -> datetime | None:
    """The latest block still running on any of `keys`; None when none is."""
    if not keys:
        return None
    with engine.connect() as connection:
        return connection.execute(_BLOCKED_UNTIL, {"keys": list(keys), "now": now}).scalar_one()


def block(
    writer: sa.Engine, keys: Sequence[str], until: datetime, reason: str, now: datetime
) -> None:
    """Block each bucket of `keys` until `until`, never shortening a longer block.

    Insert first, then lengthen: a process that finds the row there already (even one
    inserted a moment ago by another) only ever moves its end later, so of two racing
    blocks the longer one stays.
    """
    with writer.begin() as connection:
        for key in keys:
            values = {"bucket": key, "blocked_until": until, "reason": reason, "updated_at": now}
            if not insert_missing(connection, rate_blocks, values):
                connection.execute(
                    _LENGTHEN, {"key": key, "until": until, "reason": reason, "now": now}
                )
