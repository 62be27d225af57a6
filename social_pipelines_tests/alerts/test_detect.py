"""Each kind of event, made by the code that really makes it (a breaker opening on
failures, a reconnect mark, a rejected delivery, a quota claim, a missed post), is
detected and alerted once across repeated ticks, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pybreaker import STATE_CLOSED, STATE_HALF_OPEN, STATE_OPEN

from social_pipelines.alerts import AlertConfig, Alerter, AlertKind, detect
from social_pipelines.errors import Rejected, Transient
from social_pipelines.models import (
    DeliveryKind,
    DeliveryState,
    Post,
    Published,
    publish_subject,
)
from social_pipelines.resilience.breaker import SharedBreaker
from social_pipelines.store import Origin, OutboxStatus, QuotaRule
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import LEASE, FakeClock, make_draft


@pytest.fixture
def clock() -> FakeClock:
    # Breakers and reconnect marks keep real time: the test's clock starts there too.
    return FakeClock(datetime.now(UTC))


def _open_circuit(store: StateStore, name: str = "mastodon:brand") -> SharedBreaker:
    breaker = SharedBreaker(store.engine, name, fail_max=2, reset_timeout=60)

    def fail() -> None:
        raise Transient("down", platform="mastodon")

    for _ in range(2):
        with pytest.raises(Transient):
            breaker.call(fail)
    assert breaker.snapshot().is_open
    return breaker


def _dead(store: StateStore, subject: str = "109") -> str:
    draft = make_draft(subject)
    claim = store.ledger.plan_and_claim(draft, run_id="run-1", lease=LEASE)
    store.ledger.record_error(
        draft.delivery_id,
        claim.attempt,
        Rejected("mastodon: rejected (HTTP 422): Validation failed", status_code=422),
        state=DeliveryState.DEAD,
    )
    return draft.delivery_id


def _quota_deferral(store: StateStore) -> None:
    day = [QuotaRule(1, timedelta(days=1))]
    sent = make_draft("p-sent", kind=DeliveryKind.PUBLISH)
    claim = store.ledger.plan_and_claim(sent, run_id="r", lease=LEASE, quotas=day)
    store.ledger.record_sent(sent.delivery_id, claim.attempt, Published(remote_id="1", url=""))
    for subject in ("p-2", "p-3"):
        waiting = make_draft(subject, kind=DeliveryKind.PUBLISH)
        result = store.ledger.plan_and_claim(waiting, run_id="r", lease=LEASE, quotas=day)
        assert result.result == "deferred"


def _missed(store: StateStore, clock: FakeClock) -> None:
    post = Post(id="launch", text="We launched!", targets=("brand", "brand_eu"), at=clock.now)
    store.outbox.save(post, origin=Origin.CLI)
    assert store.outbox.set_status("launch", OutboxStatus.MISSED, reason="missed: found 7.0 h")
    # One target of another post withdrawn as too late when its delivery was sent.
    draft = make_draft(
        publish_subject("webinar", "brand"),
        kind=DeliveryKind.PUBLISH,
        reference=publish_subject("webinar", "brand"),
    )
    claim = store.ledger.plan_and_claim(draft, run_id="run-2", lease=LEASE)
    store.ledger.record_cancelled(draft.delivery_id, claim.attempt, "missed: late", kind="missed")


def test_every_kind_of_event_is_alerted_once_across_ticks(
    store: StateStore, clock: FakeClock
) -> None:
    _open_circuit(store)
    assert store.tokens().mark_reconnect("x", "brand_x", "401: token revoked")
    dead_id = _dead(store)
    _quota_deferral(store)
    _missed(store, clock)
    alerter = Alerter(store.alerts, AlertConfig(), clock=clock)

    first = detect(store.events, None, now=clock())
    recorded = alerter.record(first.alerts)
    by_kind: dict[AlertKind, list[str]] = {}
    for alert in recorded:
        by_kind.setdefault(alert.kind, []).append(alert.key)
    assert {kind: len(keys) for kind, keys in by_kind.items()} == {
        AlertKind.CIRCUIT_OPEN: 1,
        AlertKind.RECONNECT_NEEDED: 1,
        AlertKind.DELIVERY_DEAD: 1,
        AlertKind.QUOTA_USED_UP: 1,  # two deliveries deferred, one alert for the day
        AlertKind.POST_MISSED: 3,  # two targets of one post, one of another
    }
    assert by_kind[AlertKind.DELIVERY_DEAD] == [f"delivery_dead:{dead_id}:1"]
    assert sorted(by_kind[AlertKind.POST_MISSED]) == [
        "post_missed:launch/brand",
        "post_missed:launch/brand_eu",
        "post_missed:webinar/brand",
    ]
    assert by_kind[AlertKind.QUOTA_USED_UP][0].startswith("quota_used_up:mastodon:brand:")
    assert first.notes == []

    # The next ticks find the same rows (inside the late-commit slack) and record nothing.
    second = detect(store.events, first.cursor, now=clock.advance(seconds=30))
    assert {a.key for a in second.alerts} >= {a.key for a in recorded}
    assert alerter.record(second.alerts) == []
    third = detect(store.events, second.cursor, now=clock.advance(minutes=10))
    assert alerter.record(third.alerts) == []
    # Past the slack, only the standing reconnect mark is still seen, and it is known.
    fourth = detect(store.events, third.cursor, now=clock.advance(seconds=30))
    assert [a.kind for a in fourth.alerts] == [AlertKind.RECONNECT_NEEDED]
    assert alerter.record(fourth.alerts) == []


def test_alerts_carry_what_a_person_acts_on(store: StateStore, clock: FakeClock) -> None:
    dead_id = _dead(store)
    assert store.tokens().mark_reconnect("mastodon", "brand", "401: The access token is invalid")
    alerts = {a.kind: a for a in detect(store.events, None, now=clock()).alerts}
    dead = alerts[AlertKind.DELIVERY_DEAD]
    assert dead.error_class == "Rejected"
    assert dead.delivery_id == dead_id and dead.run_id == "run-1"
    assert dead.title == "Dead letter: reply to 109 by brand (Rejected)"
    assert "Validation failed" in dead.reason and f"retry {dead_id}" in dead.reason
    reconnect = alerts[AlertKind.RECONNECT_NEEDED]
    assert reconnect.title == "Account brand (mastodon) needs reconnecting"
    assert "The access token is invalid" in reconnect.reason
    assert "accounts connect brand" in reconnect.reason


def test_a_failed_trial_call_is_the_same_outage_and_a_new_opening_a_new_alert(
    store: StateStore, clock: FakeClock
) -> None:
    breaker = _open_circuit(store)
    alerter = Alerter(store.alerts, AlertConfig(), clock=clock)
    assert len(alerter.record(detect(store.events, None, now=clock()).alerts)) == 1
    # Half-open, the trial fails: open again, still the same outage.
    row = breaker.storage.row
    row.record_event(STATE_OPEN, STATE_HALF_OPEN, "trial")
    row.record_event(STATE_HALF_OPEN, STATE_OPEN, None)
    assert alerter.record(detect(store.events, None, now=clock()).alerts) == []
    # Closed again, then a new outage: a new alert.
    row.record_event(STATE_HALF_OPEN, STATE_CLOSED, None)
    row.record_event(STATE_CLOSED, STATE_OPEN, None)
    [again] = alerter.record(detect(store.events, None, now=clock()).alerts)
    assert again.kind == AlertKind.CIRCUIT_OPEN


def test_a_delivery_dead_again_after_a_retry_is_a_new_alert(
    store: StateStore, clock: FakeClock
) -> None:
    dead_id = _dead(store)
    alerter = Alerter(store.alerts, AlertConfig(), clock=clock)
    assert len(alerter.record(detect(store.events, None, now=clock()).alerts)) == 1
    store.ledger.make_due_again(dead_id)
    claim = store.ledger.claim(dead_id, run_id="run-3", lease=LEASE)
    store.ledger.record_error(
        dead_id, claim.attempt, Rejected("still refused"), state=DeliveryState.DEAD
    )
    [again] = alerter.record(detect(store.events, None, now=clock()).alerts)
    assert again.key == f"delivery_dead:{dead_id}:2"


def test_a_capped_scan_says_so_and_goes_on_next_tick(store: StateStore, clock: FakeClock) -> None:
    for subject in ("1", "2", "3"):
        _dead(store, subject)
        clock.advance(seconds=1)
    alerter = Alerter(store.alerts, AlertConfig(), clock=clock)
    first = detect(store.events, None, now=clock(), limit=2)
    assert len(alerter.record(first.alerts)) == 2
    [note] = first.notes
    assert note.startswith("dead deliveries: more than 2 events since") and "next tick" in note
    second = detect(store.events, first.cursor, now=clock(), limit=2)
    assert [a.kind for a in alerter.record(second.alerts)] == [AlertKind.DELIVERY_DEAD]
    assert second.notes == []


def test_a_cursor_older_than_the_look_back_is_said_not_followed(
    store: StateStore, clock: FakeClock
) -> None:
    old = '{"dead deliveries": "2020-01-01T00:00:00+00:00"}'
    found = detect(store.events, old, now=clock())
    [note] = found.notes
    assert note.startswith("dead deliveries: last looked at 2020-01-01 00:00 UTC")
    assert "are not alerted" in note
