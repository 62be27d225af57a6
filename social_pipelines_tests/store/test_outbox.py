"""The outbox on both backends: revisions, edits after publishing, cancels that keep what is
out, the sensor's due query, and the upgrade of today's (0004) stores."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import command

from social_pipelines.errors import Rejected
from social_pipelines.models import (
    DeliveryKind,
    DeliveryState,
    Post,
    PostImage,
    Published,
    publish_subject,
)
from social_pipelines.store import Origin, OutboxStatus, SaveOutcome
from social_pipelines.store.engine import create_engine, for_writing
from social_pipelines.store.migrate import HEAD, _config, ensure_schema
from social_pipelines.store.outbox import WITHDRAWN
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import LEASE, START, FakeClock, make_draft


def _post(post_id: str = "launch", **changes: object) -> Post:
    values: dict[str, object] = {
        "id": post_id,
        "text": "We launched!",
        "targets": ("brand", "brand_eu"),
        "at": START + timedelta(hours=1),
        "images": (PostImage(source="/tmp/a.jpg", alt="a desk"),),
    }
    values.update(changes)
    return Post.model_validate(values)


def _send(store: StateStore, post_id: str, target: str) -> None:
    draft = make_draft(
        publish_subject(post_id, target), kind=DeliveryKind.PUBLISH, text="We launched!"
    )
    claim = store.ledger.plan_and_claim(draft, run_id="run-1", lease=LEASE)
    store.ledger.record_sent(
        draft.delivery_id, claim.attempt, Published(remote_id="1", url="https://x/1")
    )


def test_every_change_is_a_revision_and_an_unchanged_save_is_not(store: StateStore) -> None:
    outbox = store.outbox
    assert outbox.save(_post(), origin=Origin.CLI).outcome == SaveOutcome.CREATED
    assert outbox.save(_post(), origin=Origin.CLI).outcome == SaveOutcome.UNCHANGED
    revised = outbox.save(_post(text="We launched today!"), origin=Origin.CLI)
    assert revised.outcome == SaveOutcome.REVISED
    assert revised.record is not None and revised.record.revision == 2
    assert revised.record.post.text == "We launched today!"
    assert [r.post.text for r in outbox.revisions("launch")] == [
        "We launched!",
        "We launched today!",
    ]


def test_an_edit_after_a_target_went_out_is_recorded_never_taken(store: StateStore) -> None:
    outbox = store.outbox
    outbox.save(_post(), origin=Origin.CLI)
    _send(store, "launch", "brand")
    result = outbox.save(_post(text="Edited"), origin=Origin.CLI)
    assert result.outcome == SaveOutcome.CHANGED_AFTER_PUBLISHING
    assert result.record is not None
    assert result.record.post.text == "We launched!"  # what went out stays in effect
    assert result.record.latest_revision == 2 and result.record.revision == 1
    assert outbox.revisions("launch")[-1].note == "changed after publishing: not published again"
    # The same edit again is no new revision, and still says so.
    again = outbox.save(_post(text="Edited"), origin=Origin.CLI)
    assert again.outcome == SaveOutcome.CHANGED_AFTER_PUBLISHING
    assert len(outbox.revisions("launch")) == 2


def test_a_cancel_withdraws_waiting_deliveries_and_keeps_what_is_out(store: StateStore) -> None:
    outbox = store.outbox
    outbox.save(_post(), origin=Origin.CLI)
    _send(store, "launch", "brand")
    waiting = make_draft(publish_subject("launch", "brand_eu"), kind=DeliveryKind.PUBLISH)
    store.ledger.plan(waiting)
    cancelled = outbox.cancel("launch", "cancelled by cancel")
    assert cancelled is not None and cancelled.status == OutboxStatus.CANCELLED
    rows = outbox.deliveries([cancelled])["launch"].by_target
    assert rows["brand"].state == DeliveryState.SENT
    assert rows["brand_eu"].state == DeliveryState.CANCELLED
    assert outbox.cancel("missing", "x") is None
    # A person's cancel holds against the calendar bringing the entry back.
    kept = outbox.save(_post(), origin=Origin.CLI, reopen_withdrawn=True)
    assert kept.outcome == SaveOutcome.KEPT_CANCELLED


def test_a_calendar_entry_removed_and_restored_comes_back(store: StateStore) -> None:
    outbox = store.outbox
    outbox.save(_post(), origin=Origin.CALENDAR, source="a.yaml")
    outbox.cancel("launch", WITHDRAWN)
    back = outbox.save(_post(), origin=Origin.CALENDAR, source="a.yaml", reopen_withdrawn=True)
    assert back.outcome == SaveOutcome.REVISED
    assert back.record is not None and back.record.status == OutboxStatus.OPEN


def test_an_id_from_elsewhere_is_a_conflict(store: StateStore) -> None:
    outbox = store.outbox
    outbox.save(_post(), origin=Origin.CLI)
    clash = outbox.save(_post(text="other"), origin=Origin.CALENDAR, source="a.yaml")
    assert clash.outcome == SaveOutcome.CONFLICT
    assert "already used by a post from the command line" in clash.detail
    outbox.save(_post("p2"), origin=Origin.CALENDAR, source="a.yaml")
    other_file = outbox.save(_post("p2"), origin=Origin.CALENDAR, source="b.yaml")
    assert other_file.outcome == SaveOutcome.CONFLICT and "a.yaml" in other_file.detail


def test_due_finds_open_posts_by_their_next_check(store: StateStore, clock: FakeClock) -> None:
    outbox = store.outbox
    for hours in (1, 2, 3):
        outbox.save(_post(f"p{hours}", at=START + timedelta(hours=hours)), origin=Origin.CLI)
    until = START + timedelta(hours=2)
    assert [r.post_id for r in outbox.due(until=until, limit=10)] == ["p1", "p2"]
    assert [r.post_id for r in outbox.due(until=until, limit=1)] == ["p1"]
    # A run takes p1: the sensor leaves it alone until the run's lease is over.
    assert outbox.check_again_at(["p1"], START + timedelta(hours=5)) == 1
    assert [r.post_id for r in outbox.due(until=until, limit=10)] == ["p2"]
    assert outbox.set_status("p2", OutboxStatus.DONE)
    assert outbox.due(until=until, limit=10) == []
    # A cancel that came first is never overwritten by a run finishing.
    outbox.cancel("p3", "cancelled by cancel")
    assert not outbox.set_status("p3", OutboxStatus.DONE)
    p3 = outbox.get("p3")
    assert p3 is not None and p3.status == OutboxStatus.CANCELLED
    assert outbox.next_check() == START + timedelta(hours=5)


def test_a_retry_makes_a_dead_delivery_unknown_with_fresh_attempts(store: StateStore) -> None:
    draft = make_draft(publish_subject("p", "brand"), kind=DeliveryKind.PUBLISH)
    claim = store.ledger.plan_and_claim(draft, run_id="r", lease=LEASE)
    store.ledger.record_error(
        draft.delivery_id, claim.attempt, Rejected("no"), state=DeliveryState.DEAD
    )
    revived = store.ledger.make_due_again(draft.delivery_id)
    assert revived is not None
    assert revived.state == DeliveryState.UNKNOWN and revived.attempt_base == revived.attempts
    assert store.ledger.make_due_again(draft.delivery_id) is None  # unknown: nothing to do


def test_a_store_at_today_s_revision_is_upgraded_with_its_rows(store_url: str) -> None:
    engine = create_engine(store_url)
    try:
        with for_writing(engine).begin() as connection:
            command.upgrade(_config(connection=connection), "0004")
        with for_writing(engine).begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO deliveries (delivery_id, platform, account_key, kind, subject,"
                    " account, state, text, content_hash, attempts, created_at, updated_at)"
                    " VALUES ('d1', 'mastodon', 'k', 'reply', 's', 'brand', 'sent', 't', 'h',"
                    " 1, :now, :now)"
                ),
                {"now": START.replace(tzinfo=None)},
            )
        assert ensure_schema(engine) == "0004"
    finally:
        engine.dispose()
    store = StateStore(store_url)
    try:
        record = store.ledger.get("d1")
        assert record is not None and record.attempt_base == 0
        assert store.outbox.save(_post(), origin=Origin.CLI).outcome == SaveOutcome.CREATED
        with store.engine.connect() as connection:
            assert (
                connection.execute(
                    sa.text("SELECT version_num FROM social_alembic_version")
                ).scalar_one()
                == HEAD
            )
    finally:
        store.dispose()


def test_one_remote_post_is_one_delivery_s(store: StateStore) -> None:
    """Two reconciliations racing for one post of the account: the second is refused and
    records nothing, so its delivery is looked for again instead of being taken as out."""
    from social_pipelines.store import RemoteIdTaken

    first = make_draft(publish_subject("a", "brand"), kind=DeliveryKind.PUBLISH)
    second = make_draft(publish_subject("b", "brand"), kind=DeliveryKind.PUBLISH)
    claims = [store.ledger.plan_and_claim(d, run_id="r", lease=LEASE) for d in (first, second)]
    store.ledger.record_sent(first.delivery_id, claims[0].attempt, Published(remote_id="77"))
    try:
        store.ledger.record_sent(second.delivery_id, claims[1].attempt, Published(remote_id="77"))
    except RemoteIdTaken:
        pass
    else:
        raise AssertionError("a second delivery was recorded with the first one's post")
    record = store.ledger.get(second.delivery_id)
    assert record is not None and record.state == DeliveryState.SENDING and record.remote_id is None


def test_racing_first_saves_create_the_post_once(store: StateStore) -> None:
    """A sensor tick and `calendar sync` saving a new entry at once: one creates it, the
    others find it as it is, and nobody fails."""
    from social_pipelines_tests.store.helpers import at_once_in_threads

    results, errors = at_once_in_threads(
        4, lambda: store.outbox.save(_post(), origin=Origin.CALENDAR, source="a.yaml").outcome
    )
    assert errors == []
    assert sorted(results) == sorted([SaveOutcome.CREATED] + [SaveOutcome.UNCHANGED] * 3)
    assert len(store.outbox.revisions("launch")) == 1
