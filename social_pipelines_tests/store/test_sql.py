"""The one insert-if-missing every store module uses, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from social_pipelines.store.schema import rate_blocks
from social_pipelines.store.sql import insert_missing
from social_pipelines.store.state import StateStore

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _block(bucket: str, reason: str) -> dict[str, object]:
    return {"bucket": bucket, "blocked_until": NOW, "reason": reason, "updated_at": NOW}


def test_insert_missing_inserts_once_and_keeps_the_first_row(store: StateStore) -> None:
    with store.engine.begin() as connection:
        assert insert_missing(connection, rate_blocks, _block("a", "first")) is True
        # The conflict neither raises nor aborts the transaction (PostgreSQL would).
        assert insert_missing(connection, rate_blocks, _block("a", "second")) is False
        assert insert_missing(connection, rate_blocks, _block("b", "other")) is True
    with store.engine.connect() as connection:
        rows = connection.execute(
            sa.select(rate_blocks.c.bucket, rate_blocks.c.reason).order_by(rate_blocks.c.bucket)
        ).all()
    assert [tuple(row) for row in rows] == [("a", "first"), ("b", "other")]
