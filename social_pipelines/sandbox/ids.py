"""Mastodon-style snowflake ids and the one timestamp format the API uses.

Mastodon ids are `milliseconds << 16 | sequence`, so ordering by id is ordering by creation
time, backdated (seeded) posts included; clients that page with `max_id`/`min_id` rely on
that. They are always rendered as strings in JSON.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from social_pipelines.sandbox.db import Database

SEQUENCE_BITS = 16
# Only tables with an integer `id` primary key may be passed to `next_id`.
ID_TABLES = frozenset({"accounts", "statuses", "media"})


MAX_ID = (1 << 63) - 1


def parse_id(value: str | None) -> int | None:
    """A snowflake id from a path or parameter; anything else (junk, overflow) is None."""
    if value is None or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def now_ms() -> int:
    return int(time.time() * 1000)


def next_id(db: Database, table: str, at_ms: int) -> int:
    """The smallest free snowflake for `at_ms` in `table` (call inside a transaction)."""
    if table not in ID_TABLES:
        raise ValueError(f"no snowflake ids in {table}")
    low = at_ms << SEQUENCE_BITS
    high = low + (1 << SEQUENCE_BITS) - 1
    row = db.one(f"SELECT MAX(id) AS top FROM {table} WHERE id BETWEEN ? AND ?", (low, high))  # noqa: S608
    top = None if row is None else row["top"]
    if top is None:
        return low
    if top >= high:
        # 65536 ids in one millisecond: borrow the next millisecond.
        return next_id(db, table, at_ms + 1)
    return int(top) + 1


# Notification ids come from a sequence of their own, as on Mastodon (where they are a
# plain counter): `milliseconds * 1000 + sequence`, so they still order by creation time
# (backdated seeded mentions included) but are far smaller than any status id, and a
# client that pages notifications with a status id (or the reverse) gets wrong pages here
# as it would there.
NOTIFICATION_SEQUENCE = 1000


def next_notification_id(db: Database, at_ms: int) -> int:
    """The smallest free notification id for `at_ms` (call inside a transaction)."""
    low = at_ms * NOTIFICATION_SEQUENCE
    high = low + NOTIFICATION_SEQUENCE - 1
    row = db.one("SELECT MAX(id) AS top FROM notifications WHERE id BETWEEN ? AND ?", (low, high))
    top = None if row is None else row["top"]
    if top is None:
        return low
    if top >= high:
        return next_notification_id(db, at_ms + 1)
    return int(top) + 1


def iso_ms(ms: int) -> str:
    """`2024-05-01T12:34:56.789Z`, the format of every `created_at` Mastodon sends."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_micro(seconds: float) -> str:
    """`2024-05-01T12:35:00.000000Z`, the format of Mastodon's `X-RateLimit-Reset`."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 timestamp (naive means UTC)."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
