"""Circuit breaker rows: one per breaker, shared by every process, and their event log.

The SQL behind `resilience.breaker.StoreBreakerStorage`, which keeps pybreaker's state
machine; the states stored are pybreaker's own names. The one move that needs more than a
write, going half-open, is a conditional UPDATE here: exactly one process wins the trial
call, and the others keep seeing the circuit open until it decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from pybreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN

from social_pipelines.clock import Clock, utcnow
from social_pipelines.store.engine import for_writing
from social_pipelines.store.schema import breaker_events, circuit_breakers
from social_pipelines.store.sql import insert_missing

_b = circuit_breakers.c
# Read before every guarded call: built once.
_BY_NAME = sa.select(circuit_breakers).where(_b.name == sa.bindparam("name"))


class BreakerRow:
    """One breaker's row, created closed on first use by whichever process comes first."""

    def __init__(self, engine: sa.Engine, name: str, *, clock: Clock = utcnow) -> None:
        self.engine = engine
        self.writer = for_writing(engine)
        self.name = name
        self.clock = clock
        with self.writer.begin() as connection:
            insert_missing(
                connection,
                circuit_breakers,
                {
                    "name": name,
                    "state": STATE_CLOSED,
                    "fail_counter": 0,
                    "success_counter": 0,
                    "updated_at": self.clock(),
                },
            )

    def read(self) -> sa.Row:
        """The row as it is now: state, counters, opened_at and the trial's holder."""
        with self.engine.connect() as connection:
            return connection.execute(_BY_NAME, {"name": self.name}).one()

    def _update(self, where: sa.ColumnElement[bool] | None = None, **values: object) -> int:
        condition = _b.name == self.name
        if where is not None:
            condition = sa.and_(condition, where)
        with self.writer.begin() as connection:
            return connection.execute(
                circuit_breakers.update().where(condition).values(updated_at=self.clock(), **values)
            ).rowcount

    def take_trial(self, owner: str, *, reset_timeout: float, trial_timeout: float) -> bool:
        """Move to half-open with `owner` holding the single trial call, if it may: the
        circuit has been open for `reset_timeout` seconds, the last trial's holder let
        `trial_timeout` pass without deciding (it died), or `owner` holds it already.
        True when `owner` holds the trial now."""
        now = self.clock()
        return bool(
            self._update(
                sa.or_(
                    sa.and_(
                        _b.state == STATE_OPEN,
                        _b.opened_at <= now - timedelta(seconds=reset_timeout),
                    ),
                    sa.and_(_b.state == STATE_HALF_OPEN, _b.trial_until < now),
                    sa.and_(_b.state == STATE_HALF_OPEN, _b.trial_owner == owner),
                ),
                state=STATE_HALF_OPEN,
                trial_owner=owner,
                trial_until=now + timedelta(seconds=trial_timeout),
                success_counter=0,
            )
        )

    def set_state(self, state: str) -> None:
        """Any move but to half-open: no trial is held any more."""
        self._update(state=state, trial_owner=None, trial_until=None)

    def set_opened_at(self, value: datetime) -> None:
        self._update(opened_at=value)

    def add_failure(self) -> None:
        self._update(fail_counter=_b.fail_counter + 1)

    def clear_failures(self) -> None:
        self._update(_b.fail_counter != 0, fail_counter=0)

    def add_success(self) -> None:
        self._update(success_counter=_b.success_counter + 1)

    def clear_successes(self) -> None:
        self._update(_b.success_counter != 0, success_counter=0)

    def record_event(self, from_state: str | None, to_state: str, reason: str | None) -> None:
        """Keep a transition in `breaker_events`: what an operator reads afterwards."""
        with self.writer.begin() as connection:
            connection.execute(
                breaker_events.insert().values(
                    name=self.name,
                    from_state=from_state,
                    to_state=to_state,
                    at=self.clock(),
                    reason=reason,
                )
            )


def all_breaker_rows(engine: sa.Engine) -> list[sa.Row]:
    """Every breaker's row, by name: what an operator looks at (`doctor`)."""
    with engine.connect() as connection:
        return list(connection.execute(sa.select(circuit_breakers).order_by(_b.name)))
