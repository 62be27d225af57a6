"""Mastodon's `Idempotency-Key` on status creation, without its race.

A key (scoped to the account, kept one hour) is claimed when the request is admitted. A
second request with the same key waits while the first is in flight and then answers with
the status the first created; if the first created nothing (a fault before creation, a
validation error), the claim is released and the waiting request takes it over. Completed
keys are in the database (they survive restarts); in-flight claims are in memory, because
the process that held one is the only one that could complete it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from social_pipelines.sandbox.db import Database

KEY_TTL_MS = 3_600_000
SETTING = "idempotency"


@dataclass
class Claim:
    """The outcome of claiming a key: an earlier status, or the right to create one."""

    account_id: int
    key: str
    existing_status_id: int | None = None
    _done: asyncio.Future[int | None] | None = field(default=None, repr=False)


class IdempotencyKeys:
    def __init__(self, db: Database, *, honoured: bool | None = None) -> None:
        """`honoured=None` keeps what the database remembers (default: honoured); a value
        is applied and stored, and is what `reset` returns to."""
        self.db = db
        self._in_flight: dict[tuple[int, str], asyncio.Future[int | None]] = {}
        stored = db.get_setting(SETTING)
        if honoured is None:
            honoured = bool(stored.get("honoured", True)) if stored else True
        self.startup_honoured = honoured
        self.honoured = honoured
        if stored is None or stored.get("honoured") != honoured:
            self.configure(honoured=honoured)

    def configure(self, *, honoured: bool) -> None:
        """Honour keys or ignore them from now on (persisted across restarts)."""
        self.honoured = honoured
        with self.db.transaction():
            self.db.set_setting(SETTING, {"honoured": honoured})

    def lookup(self, account_id: int, key: str, now_ms: int) -> int | None:
        row = self.db.one(
            "SELECT status_id FROM idempotency_keys WHERE account_id = ? AND key = ?"
            " AND created_at_ms > ?",
            (account_id, key, now_ms - KEY_TTL_MS),
        )
        return None if row is None else int(row["status_id"])

    async def claim(self, account_id: int, key: str, now_ms: int) -> Claim:
        while True:
            existing = self.lookup(account_id, key, now_ms)
            if existing is not None:
                return Claim(account_id, key, existing_status_id=existing)
            pending = self._in_flight.get((account_id, key))
            if pending is None:
                done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
                self._in_flight[(account_id, key)] = done
                return Claim(account_id, key, _done=done)
            created = await asyncio.shield(pending)
            if created is not None:
                return Claim(account_id, key, existing_status_id=created)
            # The holder created nothing and released the key: try to take it.

    def complete(self, claim: Claim, status_id: int, now_ms: int) -> None:
        """Record the created status (inside the creating transaction) and wake waiters."""
        self.db.execute(
            "INSERT INTO idempotency_keys(account_id, key, status_id, created_at_ms)"
            " VALUES (?, ?, ?, ?) ON CONFLICT(account_id, key) DO UPDATE SET"
            " status_id = excluded.status_id, created_at_ms = excluded.created_at_ms",
            (claim.account_id, claim.key, status_id, now_ms),
        )
        self._finish(claim, status_id)

    def release(self, claim: Claim) -> None:
        """Give the key up if this request created nothing (safe to call always)."""
        self._finish(claim, None)

    def _finish(self, claim: Claim, status_id: int | None) -> None:
        done = claim._done
        if done is None or done.done():
            return
        done.set_result(status_id)
        if self._in_flight.get((claim.account_id, claim.key)) is done:
            del self._in_flight[(claim.account_id, claim.key)]

    def purge(self, now_ms: int) -> None:
        self.db.execute(
            "DELETE FROM idempotency_keys WHERE created_at_ms <= ?", (now_ms - KEY_TTL_MS,)
        )
