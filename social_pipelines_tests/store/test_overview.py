"""The reads `doctor` makes of the store, on both backends: the ledger at a glance, quota
use for every account, breakers as stored, and the schema's revision read unchanged."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from pybreaker import STATE_OPEN

from social_pipelines.errors import OutcomeUnknown, Rejected, Transient
from social_pipelines.models import DeliveryState, Published
from social_pipelines.resilience.breaker import stored_snapshots
from social_pipelines.store import Ledger, StateStore
from social_pipelines.store.breakers import BreakerRow
from social_pipelines.store.engine import create_engine
from social_pipelines.store.migrate import HEAD, stored_schema
from social_pipelines.store.quotas import used_by_account
from social_pipelines_tests.postgres import fresh_database
from social_pipelines_tests.store.helpers import LEASE, FakeClock, make_draft

UNWELL = Transient("server error", platform="mastodon", status_code=503)


def _claimed(ledger: Ledger, subject: str, account_key: str = "109@social.example") -> str:
    draft = make_draft(subject, account_key=account_key)
    ledger.plan(draft)
    claim = ledger.claim(draft.delivery_id, run_id="run", lease=LEASE)
    assert claim.attempt
    return draft.delivery_id


def test_the_overview_counts_what_waits_and_what_died(ledger: Ledger, clock: FakeClock) -> None:
    start = clock.now
    later = _claimed(ledger, "deferred")
    ledger.record_error(
        later, 1, UNWELL, state=DeliveryState.FAILED, not_before=start + timedelta(hours=1)
    )
    stuck = _claimed(ledger, "due-long-ago")
    ledger.record_error(stuck, 1, UNWELL, state=DeliveryState.FAILED, not_before=start)
    old_dead = _claimed(ledger, "dead-long-ago")
    ledger.record_error(old_dead, 1, Rejected("no", platform="mastodon"), state=DeliveryState.DEAD)
    clock.advance(days=10)
    _claimed(ledger, "claimant-gone")  # sending; its lease runs out below
    unknown = _claimed(ledger, "unknown")
    ledger.record_error(
        unknown, 1, OutcomeUnknown("timeout", platform="mastodon"), state=DeliveryState.UNKNOWN
    )
    dead = _claimed(ledger, "dead-now")
    ledger.record_error(
        dead, 1, Rejected("too long", platform="mastodon"), state=DeliveryState.DEAD
    )
    clock.advance(minutes=30)
    recent = clock.now - timedelta(days=7)

    seen = ledger.overview(dead_since=recent, due_for=timedelta(minutes=15))
    assert (seen.deferred, seen.next_deferred_at) == (0, None)  # its time came 10 days ago
    # Due for at least 15 minutes: both failures (their times came), the unknown one and
    # the lapsed claim.
    assert seen.due == 4
    assert seen.due_since == start
    assert seen.unknown == 1
    assert seen.oldest_unknown == start + timedelta(days=10)
    assert seen.dead == 2
    assert seen.recent_dead_count == 1
    assert [d.subject for d in seen.recent_dead] == ["dead-now"]

    # Only the freshly deferred one counts as deferred, with its time.
    fresh = _claimed(ledger, "deferred-again")
    ledger.record_error(
        fresh, 1, UNWELL, state=DeliveryState.FAILED, not_before=clock.now + timedelta(hours=2)
    )
    seen = ledger.overview(dead_since=recent, due_for=timedelta(minutes=15))
    assert (seen.deferred, seen.next_deferred_at) == (1, clock.now + timedelta(hours=2))
    assert seen.due == 4


def test_quota_use_counts_sent_in_window_in_flight_and_unknown_by_account(
    store: StateStore, clock: FakeClock
) -> None:
    ledger = store.ledger
    old = _claimed(ledger, "old")
    ledger.record_sent(old, 1, Published(remote_id="1"))
    clock.advance(hours=2)
    sent = _claimed(ledger, "sent")
    ledger.record_sent(sent, 1, Published(remote_id="2"))
    _claimed(ledger, "in-flight")
    unknown = _claimed(ledger, "unknown")
    ledger.record_error(
        unknown, 1, OutcomeUnknown("reset", platform="mastodon"), state=DeliveryState.UNKNOWN
    )
    failed = _claimed(ledger, "failed")
    ledger.record_error(failed, 1, UNWELL, state=DeliveryState.FAILED)

    now = clock.now
    hour = used_by_account(store.engine, since=now - timedelta(hours=1), now=now)
    day = used_by_account(store.engine, since=now - timedelta(days=1), now=now)
    assert hour == {("mastodon", "brand"): 3}
    assert day == {("mastodon", "brand"): 4}
    later = now + LEASE + timedelta(seconds=1)  # the claim's lease ran out: not in flight
    assert used_by_account(store.engine, since=later - timedelta(hours=1), now=later) == {
        ("mastodon", "brand"): 2
    }


def test_breakers_are_read_as_stored_with_their_reset_time(store: StateStore) -> None:
    row = BreakerRow(store.engine, "mastodon:brand")
    BreakerRow(store.engine, "bluesky:brand_sky")
    row.set_state(STATE_OPEN)
    opened = row.read().updated_at
    row.set_opened_at(opened)

    snapshots = stored_snapshots(
        store.engine, {"mastodon:brand": 60.0, "bluesky:brand_sky": 5.0}.__getitem__
    )
    by_name = {s.name: s for s in snapshots}
    assert sorted(by_name) == ["bluesky:brand_sky", "mastodon:brand"]
    assert by_name["mastodon:brand"].is_open
    assert by_name["mastodon:brand"].reset_at == opened + timedelta(seconds=60)
    assert not by_name["bluesky:brand_sky"].is_open
    assert by_name["bluesky:brand_sky"].reset_at is None


def test_the_schema_is_read_without_being_changed(
    store: StateStore, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    current = stored_schema(store.engine)
    assert current.is_current and current.is_known and current.revision == HEAD
    with ExitStack() as stack:
        url = (
            stack.enter_context(fresh_database(request.getfixturevalue("postgres_url")))
            if store.backend == "postgresql"
            else f"sqlite:///{tmp_path / 'new.db'}"
        )
        engine = create_engine(url)
        stack.callback(engine.dispose)
        fresh = stored_schema(engine)
        assert fresh.is_new and fresh.is_known and not fresh.is_current
        assert stored_schema(engine).is_new  # reading created nothing
