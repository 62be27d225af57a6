"""The shared circuit breaker: state in the store, one trial call across processes."""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from social_pipelines.errors import CircuitOpen, Rejected, Transient
from social_pipelines.resilience.breaker import CLOSED, HALF_OPEN, OPEN, SharedBreaker
from social_pipelines.store import StateStore
from social_pipelines.store.schema import breaker_events

RESET = 0.4


def after_reset() -> None:
    time.sleep(RESET + 0.1)


def fail() -> None:
    raise Transient("boom", platform="test")


def reject() -> None:
    raise Rejected("bad post", platform="test")


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    """On SQLite and on PostgreSQL: every process and machine shares the breaker."""
    opened = StateStore(store_url)
    yield opened
    opened.dispose()


def make(store: StateStore, name: str = "mastodon:brand") -> SharedBreaker:
    return SharedBreaker(store.engine, name, fail_max=3, reset_timeout=RESET)


def test_opens_after_fail_max_platform_failures_only(store: StateStore) -> None:
    breaker = make(store)
    for _ in range(5):
        with pytest.raises(Rejected):
            breaker.call(reject)  # a rejected post says nothing about the platform's health
    assert breaker.snapshot().state == CLOSED
    for _ in range(3):
        with pytest.raises(Transient):
            breaker.call(fail)
    assert breaker.snapshot().state == OPEN


def test_open_breaker_is_shared_and_fails_fast_with_its_reset_time(store: StateStore) -> None:
    first, second = make(store), make(store)
    for _ in range(3):
        with pytest.raises(Transient):
            first.call(fail)
    calls = []
    with pytest.raises(CircuitOpen) as raised:
        second.call(lambda: calls.append(1))
    assert calls == []
    assert raised.value.until == first.snapshot().reset_at
    assert "mastodon:brand" in str(raised.value)


def test_one_trial_after_reset_then_closed_on_success(store: StateStore) -> None:
    one, two = make(store), make(store)
    for _ in range(3):
        with pytest.raises(Transient):
            one.call(fail)
    after_reset()

    seen: list[str] = []

    def trial() -> str:
        # While the trial runs, the other process sees an open circuit.
        with pytest.raises(CircuitOpen):
            two.call(lambda: seen.append("two"))
        return "ok"

    assert one.call(trial) == "ok"
    assert seen == []
    assert one.snapshot().state == CLOSED
    assert two.call(lambda: "flows") == "flows"


def test_failed_trial_opens_again_for_a_full_reset(store: StateStore) -> None:
    breaker = make(store)
    for _ in range(3):
        with pytest.raises(Transient):
            breaker.call(fail)
    after_reset()
    with pytest.raises(Transient):
        breaker.call(fail)
    snapshot = breaker.snapshot()
    assert snapshot.state == OPEN
    assert snapshot.reset_at > datetime.now(UTC)
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: None)


def test_transitions_are_recorded(store: StateStore) -> None:
    breaker = make(store)
    for _ in range(3):
        with pytest.raises(Transient):
            breaker.call(fail)
    after_reset()
    breaker.call(lambda: None)
    with store.engine.connect() as connection:
        rows = connection.execute(breaker_events.select().order_by(breaker_events.c.id)).all()
    assert [(row.from_state, row.to_state) for row in rows] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def _race_for_trial(url: str, start, results) -> None:
    store = StateStore(url)
    breaker = SharedBreaker(store.engine, "mastodon:brand", fail_max=3, reset_timeout=0.5)
    start.wait()
    calls = []

    def trial() -> None:
        calls.append(1)
        time.sleep(0.5)  # the trial is slow; the other process must not get in meanwhile

    with contextlib.suppress(CircuitOpen):
        breaker.call(trial)
    results.put(len(calls))


def test_exactly_one_process_wins_the_trial_call(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = StateStore(url)
    breaker = SharedBreaker(store.engine, "mastodon:brand", fail_max=3, reset_timeout=0.5)
    for _ in range(3):
        with pytest.raises(Transient):
            breaker.call(fail)
    time.sleep(0.6)
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(3), context.Queue()
    workers = [
        context.Process(target=_race_for_trial, args=(url, start, results)) for _ in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert sorted(results.get(timeout=5) for _ in workers) == [0, 0, 1]
    assert breaker.snapshot().state == CLOSED
