"""The budget a platform announces, shared exactly by every process that uses an account.

A platform's rate-limit headers say how many requests are left in its current window and
when that window resets. Blocking a bucket only once a response says "0 left" is too late:
by then other processes have requests in flight, and a platform limit below our configured
one is overshot (measured: three reply runs and a redelivery run drew 429s). So what the
platform announced is kept per bucket in the state store, and every request of every
process takes one from it atomically before it is sent, with the requests still in flight
counted. Until a platform has announced its budget for the current window, an account sends
one request at a time: the first answer tells the rest what they may do.

What is kept per bucket is the lowest remaining count the platform announced in its
current window. Within a window the platform's count only goes down, so the lowest answer
is its latest word: any request it counted after that one is still in flight here (an
answered one would have announced less). A request may go when that count, less every
request in flight, leaves room, so however the answers interleave no process sends past
what the platform said. A request that went out but brought no count back (a timeout, an
answer without headers) may have been counted: it is taken off the count. An answer about
a newer window starts the count afresh; one about an older window, arriving late, changes
nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import RateLimited
from social_pipelines.platforms.http import RateLimitInfo
from social_pipelines.store import rate_budgets
from social_pipelines.store.engine import for_writing
from social_pipelines.store.rate_budgets import Announced

# Two answers about one window may name its reset a little apart (rounding, clocks).
SAME_WINDOW = timedelta(seconds=1)
# A window counts as over only this long after its announced reset: our clock and the
# platform's are not the same instant, and a request sent at the edge may arrive early.
EDGE = timedelta(milliseconds=25)
# While a bucket waits for its first answer, others ask this often whether it came.
POLL_SECONDS = 0.005


@dataclass(frozen=True)
class Permit:
    """One request's place in the budgets of the buckets it draws from."""

    id: str
    keys: tuple[str, ...]
    waited: float = 0.0  # seconds spent waiting for it, ceiling buckets included


class AnnouncedBudget:
    """Take before each request, settle with its answer; see the module docstring."""

    def __init__(
        self,
        engine: sa.Engine,
        *,
        clock: Clock = utcnow,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.clock = clock
        self.sleep = sleep

    # -- taking ---------------------------------------------------------------------------

    def take(self, keys: list[str], *, ttl: float, max_wait: float, platform: str) -> Permit:
        """A permit in every bucket of `keys`, waiting at most `max_wait` seconds.

        `ttl` bounds how long the permit counts as in flight if nobody settles it (the
        process died): the request's own timeout and then some.
        """
        deadline = time.monotonic() + max_wait
        while True:
            permit, wait, why = self._try_take(keys, ttl)
            if permit is not None:
                return permit
            left = deadline - time.monotonic()
            if wait > left:
                raise RateLimited(
                    f"{platform} budget {why}",
                    retry_after=max(wait, POLL_SECONDS),
                    platform=platform,
                )
            self.sleep(max(wait, POLL_SECONDS))

    def _try_take(self, keys: list[str], ttl: float) -> tuple[Permit | None, float, str]:
        now = self.clock()
        # A read first: waiting processes poll without queueing for the write lock.
        with self.engine.connect() as connection:
            blocked = _blocked(keys, *_state(connection, keys, now), now)
        if blocked is not None:
            return None, *blocked
        with self.writer.begin() as connection:
            rate_budgets.lock_buckets(connection, keys)
            blocked = _blocked(keys, *_state(connection, keys, now), now)
            if blocked is not None:
                return None, *blocked
            permit = Permit(uuid.uuid4().hex, tuple(keys))
            rate_budgets.add_permit(
                connection, permit.id, keys, now=now, expires_at=now + timedelta(seconds=ttl)
            )
            return permit, 0.0, ""

    # -- what the answer said ---------------------------------------------------------

    def settle(self, permit: Permit, info: RateLimitInfo | None, *, sent: bool = True) -> None:
        """The request is answered (or failed): it is no longer in flight, and what the
        answer announced is merged in. `sent=False`: it never left, nothing to count."""
        now = self.clock()
        keys = list(permit.keys)
        with self.writer.begin() as connection:
            rate_budgets.lock_buckets(connection, keys)
            rate_budgets.drop_permit(connection, permit.id)
            # The requests in flight play no part in merging an answer: not read.
            known = _announced(connection, keys, now)
            announced = (
                info is not None
                and info.remaining is not None
                and info.reset_at is not None
                and info.reset_at > now
            )
            if not announced:
                if sent:
                    # It may have been counted and we will never hear by how much: once.
                    for key in keys:
                        if key in known:
                            rate_budgets.lower(connection, key, known[key].remaining - 1, now)
                return
            assert info is not None and info.remaining is not None and info.reset_at is not None
            for key in keys:
                budget = known.get(key)
                if budget is None or info.reset_at > budget.reset_at + SAME_WINDOW:
                    rate_budgets.put(
                        connection,
                        key,
                        announced_limit=info.limit,
                        remaining=max(0, info.remaining),
                        reset_at=info.reset_at,
                        now=now,
                    )
                elif info.reset_at >= budget.reset_at - SAME_WINDOW:
                    rate_budgets.lower(connection, key, min(budget.remaining, info.remaining), now)
                # else: an older window's answer, arriving late: nothing to learn

    def known(self, key: str) -> tuple[int, datetime] | None:
        """Requests one bucket may still send in the platform's current window (its count
        less those in flight), and when it resets; None while nothing is announced."""
        now = self.clock()
        with self.engine.connect() as connection:
            known, in_flight = _state(connection, [key], now)
        budget = known.get(key)
        if budget is None:
            return None
        return budget.remaining - in_flight.get(key, 0), budget.reset_at


def _blocked(
    keys: list[str], known: dict[str, Announced], in_flight: dict[str, int], now: datetime
) -> tuple[float, str] | None:
    """How long until every bucket of `keys` has room, and why (the longest wait); None
    when a request may go now. A bucket with a budget has room while its count exceeds
    the requests in flight; one without a budget while nothing is in flight."""
    waits = []
    for key in keys:
        flying = in_flight.get(key, 0)
        budget = known.get(key)
        if budget is not None and budget.remaining - flying <= 0:
            waits.append((_wait(budget, flying, now), _spent(key, budget)))
        elif budget is None and flying > 0:
            waits.append((POLL_SECONDS, f"{key}: waiting for the platform to announce it"))
    return max(waits) if waits else None


def _wait(budget: Announced, in_flight: int, now: datetime) -> float:
    """Until the window resets, or, while requests are in flight, until one answers."""
    if in_flight:
        return POLL_SECONDS
    return (budget.reset_at + EDGE - now).total_seconds()


def _spent(key: str, budget: Announced) -> str:
    return (
        f"{key}: used up until {budget.reset_at:%H:%M:%S} UTC or an answer "
        "(announced by the platform)"
    )


def _state(
    connection: sa.Connection, keys: list[str], now: datetime
) -> tuple[dict[str, Announced], dict[str, int]]:
    """Budgets still in their window, and unexpired requests in flight, per bucket."""
    return _announced(connection, keys, now), rate_budgets.in_flight(connection, keys, now)


def _announced(connection: sa.Connection, keys: list[str], now: datetime) -> dict[str, Announced]:
    """Budgets still in their window, per bucket."""
    return {
        key: budget
        for key, budget in rate_budgets.announced(connection, keys).items()
        if budget.reset_at + EDGE > now
    }
