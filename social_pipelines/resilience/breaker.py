"""Circuit breakers shared by every process (and, on PostgreSQL, every machine).

pybreaker keeps the state machine; `StoreBreakerStorage` keeps its state in the state
store (`store.breakers`). pybreaker's half-open state admits every call and its storage has
no compare-and-set, so the move to half-open is a conditional UPDATE in the store: exactly
one process wins the trial call, the others keep seeing the circuit open until it decides.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import pybreaker
import sqlalchemy as sa

from social_pipelines.clock import Clock, utcnow
from social_pipelines.errors import PLATFORM_UNWELL, CircuitOpen
from social_pipelines.store.breakers import BreakerRow, all_breaker_rows

log = logging.getLogger(__name__)
T = TypeVar("T")

CLOSED, OPEN, HALF_OPEN = pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN


@dataclass(frozen=True)
class BreakerSnapshot:
    name: str
    state: str
    fail_counter: int
    opened_at: datetime | None
    reset_at: datetime | None  # when an open circuit lets a trial call through

    @property
    def is_open(self) -> bool:
        return self.state != CLOSED


class StoreBreakerStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker's storage, one row per breaker in the state store."""

    def __init__(
        self,
        engine: sa.Engine,
        name: str,
        *,
        reset_timeout: float,
        trial_timeout: float = 120.0,
    ) -> None:
        super().__init__(name)
        self.reset_timeout = reset_timeout
        self.trial_timeout = trial_timeout
        # pybreaker times the reset with the real clock, so the store must use it too.
        self.row = BreakerRow(engine, name, clock=utcnow)
        self.owner = uuid.uuid4().hex  # who we are when we hold the trial call

    # -- pybreaker's interface ----------------------------------------------------------

    @property
    def state(self) -> str:
        row = self.row.read()
        if row.state == HALF_OPEN and row.trial_owner != self.owner:
            # Someone else's trial (or a trial whose owner died): closed to us.
            return OPEN
        return row.state

    @state.setter
    def state(self, state: str) -> None:
        if state == HALF_OPEN:
            won = self.row.take_trial(
                self.owner, reset_timeout=self.reset_timeout, trial_timeout=self.trial_timeout
            )
            if not won:
                raise pybreaker.CircuitBreakerError("another process holds the trial call")
            self._event(OPEN, HALF_OPEN, "reset timeout elapsed: one trial call")
            return
        before = self.row.read().state
        self.row.set_state(state)
        if before != state:
            self._event(before, state, None)

    def increment_counter(self) -> None:
        self.row.add_failure()

    def reset_counter(self) -> None:
        self.row.clear_failures()

    def increment_success_counter(self) -> None:
        self.row.add_success()

    def reset_success_counter(self) -> None:
        self.row.clear_successes()

    @property
    def counter(self) -> int:
        return self.row.read().fail_counter

    @property
    def success_counter(self) -> int:
        return self.row.read().success_counter

    @property
    def opened_at(self) -> datetime | None:
        return self.row.read().opened_at

    @opened_at.setter
    def opened_at(self, datetime: datetime) -> None:  # the parameter named as in pybreaker
        self.row.set_opened_at(datetime)

    # -- ours ------------------------------------------------------------------------------

    def _event(self, from_state: str | None, to_state: str, reason: str | None) -> None:
        suffix = f" ({reason})" if reason else ""
        log.warning("circuit %s: %s -> %s%s", self.name, from_state, to_state, suffix)
        self.row.record_event(from_state, to_state, reason)

    def snapshot(self) -> BreakerSnapshot:
        row = self.row.read()
        reset_at = (
            row.opened_at + timedelta(seconds=self.reset_timeout)
            if row.state != CLOSED and row.opened_at
            else None
        )
        return BreakerSnapshot(row.name, row.state, row.fail_counter, row.opened_at, reset_at)


def _not_platform_failure(error: BaseException) -> bool:
    """Only failures that say the platform is unwell count; a rejected post does not."""
    return not isinstance(error, PLATFORM_UNWELL)


class SharedBreaker:
    """One platform account's breaker: a fast check, then pybreaker around the call."""

    def __init__(
        self,
        engine: sa.Engine,
        name: str,
        *,
        fail_max: int,
        reset_timeout: float,
    ) -> None:
        self.name = name
        self.reset_timeout = reset_timeout
        self.clock: Clock = utcnow
        self.storage = StoreBreakerStorage(engine, name, reset_timeout=reset_timeout)
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=[_not_platform_failure],
            state_storage=self.storage,
            name=name,
            throw_new_error_on_trip=False,
        )

    def snapshot(self) -> BreakerSnapshot:
        return self.storage.snapshot()

    def _open_error(self, detail: str) -> CircuitOpen:
        snapshot = self.snapshot()
        until = snapshot.reset_at or self.clock() + timedelta(seconds=self.reset_timeout)
        return CircuitOpen(
            f"circuit {self.name} is open until {until:%Y-%m-%d %H:%M:%S} UTC ({detail})",
            until=until,
        )

    def check(self) -> BreakerSnapshot:
        """Fail fast, without touching the platform, while the circuit is open."""
        snapshot = self.snapshot()
        if snapshot.state == OPEN and snapshot.reset_at and self.clock() < snapshot.reset_at:
            raise self._open_error("waiting for the reset timeout")
        return snapshot

    def call(self, func: Callable[[], T], *, checked: BreakerSnapshot | None = None) -> T:
        """Run `func` under the breaker. `checked` is a snapshot the caller just took.

        A healthy circuit (closed, no failures counted) is the common case: the call runs
        directly, with no bookkeeping, and only a failure that says the platform is unwell
        goes through pybreaker to be counted. Every other state is pybreaker's.
        """
        snapshot = checked or self.check()
        if snapshot.state == CLOSED and snapshot.fail_counter == 0:
            try:
                return func()
            except Exception as error:
                if not _not_platform_failure(error):
                    self._count_failure(error)
                raise
        try:
            return self.breaker.call(func)
        except pybreaker.CircuitBreakerError as error:
            raise self._open_error(str(error)) from None

    def _count_failure(self, error: Exception) -> None:
        def fail_again() -> None:
            raise error

        # pybreaker counts it, opens the circuit at fail_max and records the transition;
        # the caller re-raises the original error either way.
        with contextlib.suppress(Exception):
            self.breaker.call(fail_again)


def stored_snapshots(
    engine: sa.Engine, reset_seconds: Callable[[str], float]
) -> list[BreakerSnapshot]:
    """Every breaker the store holds, as snapshots, read only (no row is created);
    `reset_seconds` gives each breaker's reset timeout by name (from its policy)."""
    snapshots = []
    for row in all_breaker_rows(engine):
        reset_at = (
            row.opened_at + timedelta(seconds=reset_seconds(row.name))
            if row.state != CLOSED and row.opened_at
            else None
        )
        snapshots.append(
            BreakerSnapshot(row.name, row.state, row.fail_counter, row.opened_at, reset_at)
        )
    return snapshots
