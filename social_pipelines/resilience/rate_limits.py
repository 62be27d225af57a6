"""Rate limits every process shares: the platform's announced budget, our configured
buckets as its ceiling, and blocked-until rows.

Per request, in this order: a blocked-until row (a 429's Retry-After) is waited out or
handed back; our configured pyrate-limiter buckets (a SQLite file under pyrate-limiter's
file lock by default, without which two processes overshoot; PostgreSQL tables in
production) cap what we send when the platform has said nothing; and the budget the
platform announced in its headers (`budget.py`) is taken from atomically, in-flight
requests counted, one request at a time until it has announced one.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from filelock import FileLock
from pyrate_limiter import AbstractBucket, Duration, Limiter, Rate
from pyrate_limiter.buckets import SQLiteBucket

from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import RateLimited
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.platforms.policy import PlatformPolicy
from social_pipelines.resilience.budget import AnnouncedBudget, Permit
from social_pipelines.store import rate_blocks
from social_pipelines.store.engine import for_writing

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg.rows import TupleRow
    from psycopg_pool import ConnectionPool

Sleep = Callable[[float], None]
# Wait this much past a window before the next request: our clock and the platform's are
# not the same instant, and a request sent at the edge may arrive in the next window.
EDGE_MARGIN_MS = 25


class _FairFileLock:
    """pyrate-limiter's file lock with a short poll interval.

    The default 50 ms poll let one process take every permit while the other slept
    (measured); polling every few milliseconds shares the bucket fairly.
    """

    def __init__(self, path: str, poll_interval: float = 0.002) -> None:
        self._lock = FileLock(path, thread_local=False)
        self._poll = poll_interval
        self._threads = threading.RLock()

    def acquire(self, blocking: bool = True, timeout: float | int | None = -1) -> bool:
        wait = -1 if timeout is None or timeout < 0 else timeout
        if not self._threads.acquire(blocking=blocking, timeout=wait if blocking else -1):
            return False
        try:
            self._lock.acquire(timeout=wait if blocking else 0, poll_interval=self._poll)
        except TimeoutError:
            self._threads.release()
            return False
        return True

    def release(self) -> None:
        self._lock.release()
        self._threads.release()

    def __enter__(self) -> _FairFileLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _table_name(key: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", key.lower())[:40]
    return f"rl_{slug}_{hashlib.sha1(key.encode()).hexdigest()[:8]}"  # noqa: S324 - a name


def _rates(policy: PlatformPolicy, bucket: str) -> list[Rate]:
    return [
        Rate(rate.limit, Duration.SECOND * rate.seconds + EDGE_MARGIN_MS)
        for rate in sorted(policy.buckets[bucket], key=lambda r: r.seconds)
    ]


class RateLimits:
    """Acquire a slot in every bucket an endpoint class draws from, or say how long."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        sqlite_path: Path | None = None,
        postgres_url: str | None = None,
        clock: Clock = utcnow,
        sleep: Sleep = time.sleep,
    ) -> None:
        if (sqlite_path is None) == (postgres_url is None):
            raise ValueError("give exactly one of sqlite_path and postgres_url")
        self.engine = engine
        self.writer = for_writing(engine)
        self.sqlite_path = sqlite_path
        self.postgres_url = postgres_url
        self.clock = clock
        self.sleep = sleep
        self.budget = AnnouncedBudget(engine, clock=clock, sleep=sleep)
        self._limiters: dict[tuple[int, str], Limiter] = {}
        self._pool: ConnectionPool[Connection[TupleRow]] | None = None
        self._guard = threading.Lock()

    # -- buckets ---------------------------------------------------------------------------

    def _limiter(self, key: str, rates: list[Rate]) -> Limiter:
        # Buckets are built inside the process that uses them, never before a fork.
        slot = (os.getpid(), key)
        with self._guard:
            limiter = self._limiters.get(slot)
            if limiter is None:
                # The rate already carries EDGE_MARGIN_MS; a second margin here only wastes permits.
                limiter = Limiter(self._bucket(key, rates), buffer_ms=5)
                self._limiters[slot] = limiter
            return limiter

    def _bucket(self, key: str, rates: list[Rate]) -> AbstractBucket:
        table = _table_name(key)
        if self.postgres_url is not None:
            from psycopg_pool import ConnectionPool
            from pyrate_limiter.buckets.postgres import PostgresBucket

            if self._pool is None or getattr(self, "_pool_pid", None) != os.getpid():
                conninfo = self.postgres_url.replace("postgresql+psycopg://", "postgresql://")
                self._pool = ConnectionPool(conninfo, min_size=1, max_size=4, open=True)
                self._pool_pid = os.getpid()
            return PostgresBucket(self._pool, table, rates)
        assert self.sqlite_path is not None
        self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        bucket = SQLiteBucket.init_from_file(
            rates, table=table, db_path=str(self.sqlite_path), use_file_lock=True
        )
        # Swap in the fair lock (same file) for pyrate-limiter's default one.
        # pyrate-limiter annotates `lock` as an RLock, yet stores its own FileLock there with
        # use_file_lock: anything with acquire/release will do.
        bucket.lock = _FairFileLock(str(self.sqlite_path) + ".lock")  # pyright: ignore[reportAttributeAccessIssue]
        return bucket

    @staticmethod
    def bucket_keys(
        platform: str, account: str, policy: PlatformPolicy, endpoint: str
    ) -> list[str]:
        return [f"{platform}:{account}:{name}" for name in policy.buckets_for(endpoint)]

    # -- acquiring ------------------------------------------------------------------------

    def acquire(self, platform: str, account: str, policy: PlatformPolicy, endpoint: str) -> Permit:
        """A permit for one request: a slot in each configured bucket and one from the
        announced budget. Settle it with the request's answer (`settle`).

        Waits at most `policy.max_wait_seconds` in all; a longer wait raises RateLimited
        with the time to come back, so the caller can defer instead of sleeping for hours.
        """
        keys = self.bucket_keys(platform, account, policy, endpoint)
        waited = 0.0
        blocked = self.blocked_until(keys)
        if blocked is not None:
            wait = (blocked - self.clock()).total_seconds()
            if wait > policy.max_wait_seconds:
                raise RateLimited(
                    f"{platform} bucket blocked until {blocked:%H:%M:%S} UTC",
                    retry_after=wait,
                    platform=platform,
                )
            if wait > 0:
                self.sleep(wait)
                waited += wait
        for key, name in zip(keys, policy.buckets_for(endpoint), strict=True):
            limiter = self._limiter(key, _rates(policy, name))
            budget = max(0.0, policy.max_wait_seconds - waited)
            started = time.monotonic()
            if not limiter.try_acquire(key, blocking=True, timeout=budget):
                longest = max(rate.seconds for rate in policy.buckets[name])
                raise RateLimited(
                    f"{platform} bucket {name} full for more than {budget:.0f} s",
                    retry_after=min(longest, max(budget, 1.0)),
                    platform=platform,
                )
            waited += time.monotonic() - started
        started = time.monotonic()
        permit = self.budget.take(
            keys,
            # Counted in flight until answered, or until its request must have timed out.
            ttl=2 * policy.call_timeout + 5,
            max_wait=max(0.0, policy.max_wait_seconds - waited),
            platform=platform,
        )
        return replace(permit, waited=waited + time.monotonic() - started)

    def settle(self, permit: Permit, info: RateLimitInfo | None, *, sent: bool = True) -> None:
        """The request is over: what its answer announced becomes the shared budget."""
        self.budget.settle(permit, info, sent=sent)

    # -- what the platform told us -------------------------------------------------------

    def blocked_until(self, keys: list[str]) -> datetime | None:
        return rate_blocks.blocked_until(self.engine, keys, self.clock())

    def block(self, keys: list[str], until: datetime, reason: str) -> None:
        """Block buckets until `until` (never shortening an existing block)."""
        rate_blocks.block(self.writer, keys, until, reason, self.clock())

    def close(self) -> None:
        for (pid, _key), limiter in list(self._limiters.items()):
            if pid == os.getpid():
                limiter.close()
        self._limiters.clear()
        if self._pool is not None and getattr(self, "_pool_pid", None) == os.getpid():
            self._pool.close()
        self._pool = None
