"""The alert outbox on SQLite and PostgreSQL: one row per event, one claimant per send,
the per-sink rate limit counted from the last minute's sends, nothing ever deleted."""

from __future__ import annotations

import threading
from datetime import timedelta

from social_pipelines.store.alerts import AlertRow, AlertState
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import START, FakeClock

LEASE = timedelta(minutes=2)


def _row(key: str) -> AlertRow:
    return AlertRow(
        key=key,
        kind="run_failed",
        severity="error",
        title=f"title of {key}",
        payload=f'{{"key": "{key}"}}',
        occurred_at=START,
    )


def test_an_event_is_recorded_once_with_a_delivery_per_sink(store: StateStore) -> None:
    outbox = store.alerts
    assert outbox.record([_row("a"), _row("b")], ["webhook", "slack"]) == ["a", "b"]
    # The same events again (a second tick, a retried step): nothing new.
    assert outbox.record([_row("a"), _row("b"), _row("c")], ["webhook", "slack"]) == ["c"]
    assert [d.sink for d in outbox.deliveries("a")] == ["slack", "webhook"]
    assert all(d.state == AlertState.PENDING for d in outbox.deliveries("a"))
    assert {row.key for row in outbox.list()} == {"a", "b", "c"}


def test_two_claimants_never_take_the_same_alert(store: StateStore) -> None:
    outbox = store.alerts
    outbox.record([_row("a")], ["webhook"])
    first = outbox.claim_next("webhook", "one", lease=LEASE)
    second = outbox.claim_next("webhook", "two", lease=LEASE)
    assert first.alert is not None and first.alert.key == "a" and first.attempt == 1
    assert second.alert is None
    # Only the claimant records the outcome.
    assert not outbox.record_sent("a", "webhook", "two")
    assert outbox.record_sent("a", "webhook", "one")
    assert outbox.deliveries("a")[0].state == AlertState.SENT
    assert outbox.claim_next("webhook", "two", lease=LEASE).alert is None


def test_racing_claimants_in_threads_send_each_alert_once(store: StateStore) -> None:
    outbox = store.alerts
    outbox.record([_row(f"k{i}") for i in range(12)], ["webhook"])
    taken: list[str] = []
    lock = threading.Lock()

    def work(owner: str) -> None:
        while (claim := outbox.claim_next("webhook", owner, lease=LEASE)).alert is not None:
            assert outbox.record_sent(claim.alert.key, "webhook", owner)
            with lock:
                taken.append(claim.alert.key)

    threads = [threading.Thread(target=work, args=(f"o{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken) == sorted(f"k{i}" for i in range(12))


def test_a_failed_send_is_kept_undelivered_and_due_again_at_its_time(
    store: StateStore, clock: FakeClock
) -> None:
    outbox = store.alerts
    outbox.record([_row("a")], ["webhook"])
    claim = outbox.claim_next("webhook", "one", lease=LEASE)
    assert claim.alert is not None
    outbox.record_failed(
        "a",
        "webhook",
        "one",
        error_class="Transient",
        error="webhook at http://127.0.0.1:9 answered HTTP 500",
        next_attempt_at=clock.now + timedelta(seconds=40),
    )
    [undelivered] = outbox.undelivered()
    assert undelivered.alert.key == "a"
    assert undelivered.delivery.state == AlertState.FAILED
    assert undelivered.delivery.attempts == 1
    assert undelivered.delivery.last_error_class == "Transient"
    assert "attempt(s), last Transient" in undelivered.described()
    assert outbox.undelivered_count() == 1
    assert outbox.claim_next("webhook", "two", lease=LEASE).alert is None  # not yet
    clock.advance(seconds=41)
    again = outbox.claim_next("webhook", "two", lease=LEASE)
    assert again.alert is not None and again.attempt == 2
    outbox.record_sent("a", "webhook", "two")
    assert outbox.undelivered() == []
    assert outbox.get("a") is not None  # delivered or not, never deleted


def test_a_claim_whose_holder_died_is_taken_over_after_its_lease(
    store: StateStore, clock: FakeClock
) -> None:
    outbox = store.alerts
    outbox.record([_row("a")], ["webhook"])
    assert outbox.claim_next("webhook", "dead", lease=LEASE).alert is not None
    assert outbox.claim_next("webhook", "alive", lease=LEASE).alert is None
    clock.advance(seconds=LEASE.total_seconds() + 1)
    taken = outbox.claim_next("webhook", "alive", lease=LEASE)
    assert taken.alert is not None and taken.attempt == 2
    assert not outbox.record_sent("a", "webhook", "dead")  # the old holder lost it
    assert outbox.record_sent("a", "webhook", "alive")


def test_the_rate_limit_holds_back_what_exceeds_it_and_lets_it_go_later(
    store: StateStore, clock: FakeClock
) -> None:
    outbox = store.alerts
    outbox.record([_row(f"k{i}") for i in range(5)], ["slack"])
    sent = []
    while (claim := outbox.claim_next("slack", "o", lease=LEASE, rate_per_minute=3)).alert:
        outbox.record_sent(claim.alert.key, "slack", "o")
        sent.append(claim.alert.key)
        clock.advance(seconds=1)
    assert len(sent) == 3
    assert claim.held_by_rate == 2
    assert claim.rate_frees_at == START + timedelta(minutes=1)
    # Other sinks have their own limit.
    outbox.record([_row("w")], ["webhook"])
    assert outbox.claim_next("webhook", "o", lease=LEASE, rate_per_minute=3).alert is not None
    clock.now = START + timedelta(minutes=1, seconds=0.5)  # the first send left the window
    freed = outbox.claim_next("slack", "o", lease=LEASE, rate_per_minute=3)
    assert freed.alert is not None and freed.alert.key not in sent
    assert outbox.claim_next("slack", "o", lease=LEASE, rate_per_minute=3).held_by_rate == 1
