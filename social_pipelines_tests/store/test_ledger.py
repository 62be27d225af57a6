"""The ledger's rows and transitions, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from social_pipelines.errors import (
    ERROR_EXCERPT_LIMIT,
    OutcomeUnknown,
    RateLimited,
    Rejected,
    Transient,
)
from social_pipelines.models import DeliveryKind, DeliveryState, Published, content_hash
from social_pipelines.store import ClaimResult, Ledger
from social_pipelines.store.quotas import sent_since
from social_pipelines.store.schema import deliveries
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import LEASE, FakeClock, make_draft


def _claimed(ledger: Ledger, subject: str = "post-1", run_id: str = "run-a") -> tuple[str, int]:
    draft = make_draft(subject)
    ledger.plan(draft)
    claim = ledger.claim(draft.delivery_id, run_id=run_id, lease=LEASE)
    assert claim.result == ClaimResult.CLAIMED
    return draft.delivery_id, claim.attempt


def _count_rows(ledger: Ledger) -> int:
    with ledger.engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(deliveries)).scalar_one()


def _assert_utc(value: datetime | None) -> None:
    assert value is not None
    assert value.tzinfo is not None
    assert value.utcoffset() == timedelta(0)


# -- plan ----------------------------------------------------------------------------------


def test_plan_inserts_a_planned_row(ledger: Ledger, clock: FakeClock) -> None:
    draft = make_draft("post-9", text="  Hello @bob  ", campaign="mentions")
    record = ledger.plan(draft)
    assert record.delivery_id == draft.delivery_id
    assert record.state == DeliveryState.PLANNED
    assert (record.platform, record.account_key, record.kind, record.subject) == (
        "mastodon",
        "109@social.example",
        "reply",
        "post-9",
    )
    assert record.campaign == "mentions"
    assert record.text == "  Hello @bob  "
    assert record.content_hash == content_hash("Hello @bob")
    assert record.attempts == 0
    assert record.created_at == record.updated_at == clock.now
    assert record.remote_id is None and record.sent_at is None and record.published is None
    assert ledger.get(draft.delivery_id) == record


def test_plan_again_keeps_the_first_text(ledger: Ledger, clock: FakeClock) -> None:
    first = ledger.plan(make_draft(text="first wording"))
    clock.advance(minutes=5)
    again = ledger.plan(make_draft(text="a changed template"))
    assert again == first
    assert again.text == "first wording"
    assert again.content_hash == content_hash("first wording")
    assert _count_rows(ledger) == 1


def test_plan_does_not_reset_a_row_that_moved_on(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_sent(delivery_id, attempt, Published(remote_id="r1", url="https://x/r1"))
    record = ledger.plan(make_draft(text="other"))
    assert record.state == DeliveryState.SENT
    assert record.attempts == 1


def test_plan_stores_the_drafts_reference_and_the_first_one_wins(ledger: Ledger) -> None:
    record = ledger.plan(make_draft(reference="outbox-7/mastodon"))
    assert (record.reference, record.staged_id) == ("outbox-7/mastodon", None)
    assert ledger.plan(make_draft(reference="outbox-8/mastodon")).reference == "outbox-7/mastodon"
    assert ledger.plan(make_draft("post-2")).reference is None


def test_get_of_an_unknown_id_is_none_and_claiming_it_fails(ledger: Ledger) -> None:
    assert ledger.get("0" * 32) is None
    with pytest.raises(KeyError, match="plan it first"):
        ledger.claim("0" * 32, run_id="run", lease=LEASE)


# -- claim ---------------------------------------------------------------------------------


def test_claim_of_a_planned_row(ledger: Ledger, clock: FakeClock) -> None:
    draft = make_draft()
    ledger.plan(draft)
    clock.advance(seconds=3)
    claim = ledger.claim(draft.delivery_id, run_id="run-a", lease=LEASE)
    assert claim.result == ClaimResult.CLAIMED
    assert claim.attempt == 1
    assert claim.record.state == DeliveryState.SENDING
    assert claim.record.attempts == 1
    assert claim.record.run_id == "run-a"
    assert claim.record.lease_until == clock.now + LEASE
    assert claim.record.updated_at == clock.now
    [attempt] = ledger.attempts(draft.delivery_id)
    assert (attempt.attempt, attempt.run_id, attempt.started_at) == (1, "run-a", clock.now)
    assert attempt.finished_at is None and attempt.outcome is None


def test_a_second_claim_while_sending_is_in_flight(ledger: Ledger) -> None:
    delivery_id, _ = _claimed(ledger)
    second = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert second.result == ClaimResult.IN_FLIGHT
    assert second.attempt == 0
    assert second.record.run_id == "run-a"
    assert second.record.attempts == 1
    assert len(ledger.attempts(delivery_id)) == 1


def test_claim_of_a_sent_row_returns_its_remote_id_and_url(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_sent(delivery_id, attempt, Published(remote_id="r-77", url="https://m/@b/77"))
    claim = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert claim.result == ClaimResult.SENT
    assert (claim.record.remote_id, claim.record.remote_url) == ("r-77", "https://m/@b/77")
    assert claim.record.published == Published(remote_id="r-77", url="https://m/@b/77")
    assert claim.record.attempts == 1
    assert len(ledger.attempts(delivery_id)) == 1


def test_claim_of_a_failed_row_waits_for_its_not_before(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, attempt = _claimed(ledger)
    not_before = clock.now + timedelta(minutes=30)
    ledger.record_error(
        delivery_id,
        attempt,
        RateLimited("slow down", retry_after=1800, status_code=429),
        state=DeliveryState.FAILED,
        not_before=not_before,
    )
    deferred = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert deferred.result == ClaimResult.DEFERRED
    assert deferred.record.not_before == not_before
    assert deferred.record.state == DeliveryState.FAILED

    clock.advance(minutes=29, seconds=59)
    assert ledger.claim(delivery_id, run_id="run-b", lease=LEASE).result == ClaimResult.DEFERRED

    clock.advance(seconds=1)  # exactly at not_before: due
    due = ledger.claim(delivery_id, run_id="run-c", lease=LEASE)
    assert due.result == ClaimResult.CLAIMED
    assert due.attempt == 2
    assert due.record.run_id == "run-c"


def test_claim_of_a_failed_row_without_not_before_is_immediate(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_error(delivery_id, attempt, Transient("reset"), state=DeliveryState.FAILED)
    claim = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert (claim.result, claim.attempt) == (ClaimResult.CLAIMED, 2)


def test_claim_of_an_unknown_row_asks_for_reconciliation(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_error(
        delivery_id, attempt, OutcomeUnknown("read timeout"), state=DeliveryState.UNKNOWN
    )
    claim = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert claim.result == ClaimResult.RECONCILE
    assert claim.attempt == 2
    assert claim.record.state == DeliveryState.SENDING
    # Being reconciled, it is held like any send.
    assert ledger.claim(delivery_id, run_id="run-c", lease=LEASE).result == ClaimResult.IN_FLIGHT


def test_a_sending_row_whose_lease_ran_out_is_reconciled(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, _ = _claimed(ledger)
    clock.advance(minutes=10)  # lease_until == now: not yet expired
    assert ledger.claim(delivery_id, run_id="run-b", lease=LEASE).result == ClaimResult.IN_FLIGHT
    clock.advance(seconds=1)
    claim = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert claim.result == ClaimResult.RECONCILE
    assert claim.attempt == 2
    assert claim.record.run_id == "run-b"
    assert claim.record.lease_until == clock.now + LEASE
    assert [a.run_id for a in ledger.attempts(delivery_id)] == ["run-a", "run-b"]


def test_claim_of_a_dead_row_is_dead(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_error(
        delivery_id,
        attempt,
        Rejected("text too long", status_code=422),
        state=DeliveryState.DEAD,
    )
    claim = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert claim.result == ClaimResult.DEAD
    assert claim.record.error_kind == "rejected"
    assert claim.record.status_code == 422
    assert "text too long" in (claim.record.error or "")


# -- recording outcomes --------------------------------------------------------------------


def test_record_sent_closes_the_row_and_the_attempt(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, attempt = _claimed(ledger, run_id="run-a")
    ledger.record_error(delivery_id, attempt, Transient("reset"), state=DeliveryState.FAILED)
    second = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    clock.advance(seconds=2)
    record = ledger.record_sent(
        delivery_id, second.attempt, Published(remote_id="r1", url="https://m/r1")
    )
    assert record.state == DeliveryState.SENT
    assert (record.remote_id, record.remote_url) == ("r1", "https://m/r1")
    assert record.sent_at == record.updated_at == clock.now
    assert record.lease_until is None and record.not_before is None
    # The error of the earlier attempt no longer describes the row.
    assert (record.error, record.error_kind, record.status_code) == (None, None, None)

    first, last = ledger.attempts(delivery_id)
    assert (first.attempt, first.run_id, first.outcome, first.error_kind) == (
        1,
        "run-a",
        "failed",
        "transient",
    )
    assert (last.attempt, last.run_id, last.outcome, last.finished_at) == (
        2,
        "run-b",
        "sent",
        clock.now,
    )
    assert last.status_code is None and last.error is None


def test_record_error_writes_class_status_and_excerpt(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, attempt = _claimed(ledger, run_id="run-7")
    clock.advance(seconds=1)
    error = OutcomeUnknown(
        "server error on a create", platform="mastodon", status_code=502, detail="bad gateway"
    )
    record = ledger.record_error(delivery_id, attempt, error, state=DeliveryState.UNKNOWN)
    assert record.state == DeliveryState.UNKNOWN
    assert (record.error_kind, record.status_code) == ("outcome_unknown", 502)
    assert record.error == "mastodon: server error on a create (HTTP 502): bad gateway"
    assert record.lease_until is None
    [row] = ledger.attempts(delivery_id)
    assert (row.run_id, row.outcome, row.status_code, row.error_kind) == (
        "run-7",
        "unknown",
        502,
        "outcome_unknown",
    )
    assert row.error == record.error
    assert row.finished_at == clock.now


def test_an_html_error_page_is_kept_as_an_excerpt_not_only_its_title(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    page = (
        "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
        "<h1>502 Bad Gateway</h1><p>upstream: 10.0.0.7:3000</p>" + "<!-- pad -->" * 400
    )
    error = OutcomeUnknown(
        "server error on a create", platform="mastodon", status_code=502, detail=page
    )
    assert str(error) == "mastodon: server error on a create (HTTP 502): 502 Bad Gateway"

    record = ledger.record_error(delivery_id, attempt, error, state=DeliveryState.UNKNOWN)

    [row] = ledger.attempts(delivery_id)
    for stored in (record.error, row.error):
        assert stored.startswith("mastodon: server error on a create (HTTP 502): <!DOCTYPE html>")
        assert "<p>upstream: 10.0.0.7:3000</p>" in stored
        assert len(stored.encode("utf-8")) <= ERROR_EXCERPT_LIMIT
        assert stored.endswith("...")
    assert ledger.get(delivery_id).error == record.error


def test_record_error_takes_an_explicit_outcome(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_error(
        delivery_id, attempt, RateLimited("slow"), state=DeliveryState.FAILED, outcome="deferred"
    )
    assert [row.outcome for row in ledger.attempts(delivery_id)] == ["deferred"]


@pytest.mark.parametrize(
    "error",
    [
        Rejected("invalid", detail="é" * 50_000, status_code=422),  # multi-byte detail
        Rejected("x" * 100_000, status_code=400),  # a huge message, not only a detail
        Transient("€" * 10_000),
    ],
    ids=["huge-detail", "huge-message", "multibyte-message"],
)
def test_error_excerpts_fit_in_2048_bytes(ledger: Ledger, error: Exception) -> None:
    delivery_id, attempt = _claimed(ledger)
    record = ledger.record_error(delivery_id, attempt, error, state=DeliveryState.DEAD)
    [row] = ledger.attempts(delivery_id)
    for stored in (record.error, row.error):
        assert stored
        assert len(stored.encode("utf-8")) <= ERROR_EXCERPT_LIMIT
        assert stored.endswith("...")
    assert record.error == row.error


@pytest.mark.parametrize("state", [DeliveryState.SENT, DeliveryState.PLANNED])
def test_record_error_refuses_a_non_error_state(ledger: Ledger, state: DeliveryState) -> None:
    delivery_id, attempt = _claimed(ledger)
    with pytest.raises(ValueError, match="cannot move"):
        ledger.record_error(delivery_id, attempt, Transient("x"), state=state)
    assert ledger.get(delivery_id).state == DeliveryState.SENDING


def test_a_superseded_attempt_cannot_overwrite_the_newer_outcome(
    ledger: Ledger, clock: FakeClock
) -> None:
    delivery_id, stale = _claimed(ledger, run_id="run-old")
    clock.advance(minutes=11)  # the old claimant's lease ran out: taken over
    takeover = ledger.claim(delivery_id, run_id="run-new", lease=LEASE)
    assert takeover.result == ClaimResult.RECONCILE

    # The old run wakes up and reports a send: the row stays with the new claimant.
    late = ledger.record_sent(delivery_id, stale, Published(remote_id="old", url="u-old"))
    assert late.state == DeliveryState.SENDING
    assert (late.run_id, late.attempts, late.remote_id) == ("run-new", 2, None)

    ledger.record_sent(delivery_id, takeover.attempt, Published(remote_id="new", url="u-new"))
    # A still later report of the old attempt cannot undo the newer `sent` either.
    after = ledger.record_error(delivery_id, stale, Rejected("late"), state=DeliveryState.DEAD)
    assert after.state == DeliveryState.SENT
    assert (after.remote_id, after.remote_url, after.error) == ("new", "u-new", None)

    old, new = ledger.attempts(delivery_id)
    assert old.outcome.startswith("superseded:")
    assert new.outcome == "sent"


@pytest.mark.parametrize(
    "store_url",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
            ],
        ),
    ],
    indirect=True,
)
@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (DeliveryState.UNKNOWN, None),
        (DeliveryState.FAILED, None),
        (DeliveryState.FAILED, "deferred"),
    ],
)
def test_a_superseded_error_report_is_recorded_not_raised(
    ledger: Ledger, clock: FakeClock, state: DeliveryState, outcome: str | None
) -> None:
    delivery_id, stale = _claimed(ledger, run_id="run-old")
    clock.advance(minutes=11)
    ledger.claim(delivery_id, run_id="run-new", lease=LEASE)
    record = ledger.record_error(
        delivery_id, stale, OutcomeUnknown("timeout"), state=state, outcome=outcome
    )
    assert record.state == DeliveryState.SENDING
    assert record.run_id == "run-new"
    assert ledger.attempts(delivery_id)[0].outcome.startswith("superseded:")


@pytest.mark.parametrize(
    "store_url",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
            ],
        ),
    ],
    indirect=True,
)
def test_a_superseded_reconciliation_is_recorded_not_raised(
    ledger: Ledger, clock: FakeClock
) -> None:
    delivery_id, stale = _claimed(ledger, run_id="run-old")
    clock.advance(minutes=11)
    ledger.claim(delivery_id, run_id="run-new", lease=LEASE)
    record = ledger.record_sent(
        delivery_id, stale, Published(remote_id="r", url="u"), outcome="reconciled"
    )
    assert record.state == DeliveryState.SENDING
    assert ledger.attempts(delivery_id)[0].outcome == "superseded:reconciled"


def test_a_stale_claimant_may_still_finish_when_nobody_took_over(
    ledger: Ledger, clock: FakeClock
) -> None:
    delivery_id, attempt = _claimed(ledger)
    clock.advance(hours=1)  # lease expired, but no one claimed it meanwhile
    record = ledger.record_sent(delivery_id, attempt, Published(remote_id="r", url="u"))
    assert record.state == DeliveryState.SENT


# -- staged ids: what an attempt made on the platform, kept for the next one ---------------


def test_the_claim_holder_records_a_staged_id(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, _ = _claimed(ledger, run_id="run-a")
    clock.advance(seconds=3)
    staged = ledger.record_staged(delivery_id, "run-a", "media-1")
    assert staged is not None
    assert (staged.staged_id, staged.state, staged.updated_at) == (
        "media-1",
        DeliveryState.SENDING,
        clock.now,
    )
    assert ledger.get(delivery_id) == staged
    again = ledger.record_staged(delivery_id, "run-a", "media-2")  # a later step's id
    assert again is not None and again.staged_id == "media-2"


def test_only_the_holder_of_a_live_claim_records_a_staged_id(
    ledger: Ledger, clock: FakeClock
) -> None:
    delivery_id, _ = _claimed(ledger, run_id="run-a")
    assert ledger.record_staged(delivery_id, "run-b", "not-theirs") is None
    assert ledger.record_staged("0" * 32, "run-a", "no-such-delivery") is None
    # The lease lapses: the row may be taken over at any moment, so the holder may not.
    clock.advance(seconds=LEASE.total_seconds() + 1)
    assert ledger.record_staged(delivery_id, "run-a", "too-late") is None
    taken = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert taken.result == ClaimResult.RECONCILE
    assert ledger.record_staged(delivery_id, "run-a", "too-late") is None
    ledger.record_sent(delivery_id, taken.attempt, Published(remote_id="r1", url="https://x/r1"))
    assert ledger.record_staged(delivery_id, "run-b", "after-the-end") is None
    assert ledger.get(delivery_id).staged_id is None


def test_a_staged_id_is_kept_for_the_next_attempt(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger, run_id="run-a")
    assert ledger.record_staged(delivery_id, "run-a", "media-1") is not None
    ledger.record_error(delivery_id, attempt, Transient("reset"), state=DeliveryState.FAILED)
    retry = ledger.claim(delivery_id, run_id="run-b", lease=LEASE)
    assert retry.result == ClaimResult.CLAIMED
    assert retry.record.staged_id == "media-1"


# -- queries -------------------------------------------------------------------------------


def _settle(ledger: Ledger, subject: str, state: DeliveryState, **draft: str) -> str:
    plan = make_draft(subject, **draft)
    ledger.plan(plan)
    if state == DeliveryState.PLANNED:
        return plan.delivery_id
    claim = ledger.claim(plan.delivery_id, run_id="run", lease=LEASE)
    if state == DeliveryState.SENT:
        ledger.record_sent(plan.delivery_id, claim.attempt, Published(remote_id=subject))
    elif state != DeliveryState.SENDING:
        ledger.record_error(plan.delivery_id, claim.attempt, Transient("x"), state=state)
    return plan.delivery_id


def test_states_of_subjects(ledger: Ledger) -> None:
    _settle(ledger, "a", DeliveryState.SENT)
    _settle(ledger, "b", DeliveryState.DEAD)
    _settle(ledger, "c", DeliveryState.PLANNED)
    _settle(ledger, "d", DeliveryState.SENDING)
    _settle(ledger, "e", DeliveryState.UNKNOWN)
    # Same subjects, but another account, platform or kind: not ours to report.
    _settle(ledger, "f", DeliveryState.SENT, account_key="other@social.example")
    _settle(ledger, "f", DeliveryState.SENT, platform="bluesky")
    ledger.plan(make_draft("f", kind=DeliveryKind.PUBLISH))

    found = ledger.states_of_subjects(
        "mastodon", "109@social.example", "reply", ["a", "b", "c", "d", "e", "f", "zz", "a"]
    )
    assert found == {
        "a": DeliveryState.SENT,
        "b": DeliveryState.DEAD,
        "c": DeliveryState.PLANNED,
        "d": DeliveryState.SENDING,
        "e": DeliveryState.UNKNOWN,
    }
    assert ledger.states_of_subjects("mastodon", "109@social.example", "reply", []) == {}


def test_states_of_subjects_beyond_one_batch(ledger: Ledger) -> None:
    # More subjects than one IN (...) batch holds; hits sit in the second and third batch.
    for subject in ("s-0700", "s-1100"):
        _settle(ledger, subject, DeliveryState.SENT)
    wanted = [f"s-{n:04d}" for n in range(1200)]
    found = ledger.states_of_subjects("mastodon", "109@social.example", "reply", wanted)
    assert found == {"s-0700": DeliveryState.SENT, "s-1100": DeliveryState.SENT}


def _sent_since(
    ledger: Ledger, account_key: str, since: datetime, platform: str = "mastodon"
) -> int:
    with ledger.engine.connect() as connection:
        return sent_since(connection, platform=platform, account_key=account_key, since=since)


def test_quotas_count_sent_rows_of_the_account_since_a_time(
    ledger: Ledger, clock: FakeClock
) -> None:
    _settle(ledger, "early", DeliveryState.SENT)
    since = clock.advance(minutes=30)
    _settle(ledger, "at-since", DeliveryState.SENT)
    clock.advance(minutes=5)
    _settle(ledger, "later", DeliveryState.SENT)
    _settle(ledger, "failed", DeliveryState.FAILED)
    _settle(ledger, "sending", DeliveryState.SENDING)
    _settle(ledger, "dead", DeliveryState.DEAD)
    _settle(ledger, "other", DeliveryState.SENT, account_key="other@social.example")

    assert _sent_since(ledger, "109@social.example", since) == 2
    assert _sent_since(ledger, "109@social.example", since - timedelta(hours=1)) == 3
    assert _sent_since(ledger, "109@social.example", clock.now + timedelta(1)) == 0
    assert _sent_since(ledger, "other@social.example", since) == 1
    assert _sent_since(ledger, "109@social.example", since, platform="bluesky") == 0
    # An aware time in another zone means the same instant.
    in_paris = since.astimezone(timezone(timedelta(hours=1)))
    assert _sent_since(ledger, "109@social.example", in_paris) == 2


def test_list_filters_by_state_and_campaign(ledger: Ledger, clock: FakeClock) -> None:
    sent = _settle(ledger, "a", DeliveryState.SENT)
    clock.advance(seconds=1)
    dead = _settle(ledger, "b", DeliveryState.DEAD)
    clock.advance(seconds=1)
    other = _settle(ledger, "c", DeliveryState.SENT, campaign="questions")
    assert [r.delivery_id for r in ledger.list()] == [sent, dead, other]
    assert [r.delivery_id for r in ledger.list(states=[DeliveryState.SENT])] == [sent, other]
    assert [r.delivery_id for r in ledger.list(campaign="questions")] == [other]
    assert [r.delivery_id for r in ledger.list(limit=1)] == [sent]


# -- time ----------------------------------------------------------------------------------


def test_list_newest_puts_the_most_recently_changed_first(ledger: Ledger, clock: FakeClock) -> None:
    first = _settle(ledger, "first", DeliveryState.FAILED)
    clock.advance(minutes=1)
    second = _settle(ledger, "second", DeliveryState.DEAD)
    clock.advance(minutes=1)
    third = _settle(ledger, "third", DeliveryState.PLANNED)
    clock.advance(minutes=1)
    # The first one is retried and sent last: it leads, though it was planned first.
    claim = ledger.claim(first, run_id="run-2", lease=LEASE)
    ledger.record_sent(first, claim.attempt, Published(remote_id="r1"))

    assert [r.delivery_id for r in ledger.list(newest=True)] == [first, third, second]
    assert [r.delivery_id for r in ledger.list(newest=True, limit=2)] == [first, third]
    settled = ledger.list(states=[DeliveryState.PLANNED, DeliveryState.DEAD], newest=True)
    assert [r.delivery_id for r in settled] == [third, second]
    assert [r.delivery_id for r in ledger.list()] == [first, second, third]


def test_timestamps_come_back_aware_utc(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, attempt = _claimed(ledger)
    ledger.record_error(
        delivery_id,
        attempt,
        RateLimited("slow"),
        state=DeliveryState.FAILED,
        not_before=clock.now + timedelta(minutes=1),
    )
    clock.advance(minutes=2)
    claim = ledger.claim(delivery_id, run_id="run", lease=LEASE)
    ledger.record_error(
        delivery_id,
        claim.attempt,
        RateLimited("slow"),
        state=DeliveryState.FAILED,
        not_before=clock.now + timedelta(minutes=1),
    )
    clock.advance(minutes=2)
    claim = ledger.claim(delivery_id, run_id="run", lease=LEASE)
    record = ledger.record_sent(delivery_id, claim.attempt, Published(remote_id="r"))
    for value in (record.created_at, record.updated_at, record.sent_at):
        _assert_utc(value)
    _assert_utc(claim.record.lease_until)
    for row in ledger.attempts(delivery_id):
        _assert_utc(row.started_at)
        _assert_utc(row.finished_at)
    listed = ledger.list(states=[DeliveryState.SENT])[0]
    _assert_utc(listed.sent_at)
    assert listed.sent_at == clock.now


def test_an_aware_time_in_another_zone_is_stored_as_the_same_instant(
    store_url: str,
) -> None:
    tokyo = timezone(timedelta(hours=9))
    now = datetime(2025, 6, 1, 21, 0, tzinfo=tokyo)
    store = StateStore(store_url, clock=lambda: now)
    try:
        record = store.ledger.plan(make_draft())
        assert record.created_at == now
        assert record.created_at.tzinfo == UTC
        assert record.created_at.hour == 12
    finally:
        store.dispose()


def test_a_naive_datetime_is_refused(store_url: str, ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger)
    naive = datetime(2025, 3, 1, 12, 0)
    with pytest.raises(sa.exc.StatementError, match="naive datetime") as caught:
        _sent_since(ledger, "109@social.example", naive)
    assert isinstance(caught.value.orig, ValueError)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        ledger.record_error(
            delivery_id, attempt, Transient("x"), state=DeliveryState.FAILED, not_before=naive
        )
    # Nothing was written by the refused call.
    assert ledger.get(delivery_id).state == DeliveryState.SENDING

    naive_store = StateStore(store_url, clock=lambda: naive)
    try:
        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            naive_store.ledger.plan(make_draft("other"))
        assert naive_store.ledger.get(make_draft("other").delivery_id) is None
    finally:
        naive_store.dispose()


# -- leases: renewed by the holder's heartbeat, lapsing when it stops ------------------------


def test_renew_leases_extends_only_the_holders_live_claims(
    ledger: Ledger, clock: FakeClock
) -> None:
    mine, _ = _claimed(ledger, "post-1", run_id="run-a")
    theirs, _ = _claimed(ledger, "post-2", run_id="run-b")
    lapsed, _ = _claimed(ledger, "post-3", run_id="run-a")
    # post-3's lease runs out (the holder paused too long): it is free, not renewed.
    with ledger.writer.begin() as connection:
        connection.execute(
            deliveries.update()
            .where(deliveries.c.delivery_id == lapsed)
            .values(lease_until=clock.now - timedelta(seconds=1))
        )
    clock.now += timedelta(seconds=30)
    assert ledger.renew_leases("run-a", timedelta(minutes=1)) == 1
    assert ledger.get(mine).lease_until == clock.now + timedelta(minutes=1)
    assert ledger.get(theirs).lease_until == clock.now - timedelta(seconds=30) + LEASE
    assert ledger.get(lapsed).lease_until < clock.now
    assert lapsed in {record.delivery_id for record in ledger.due()}


def test_an_unknown_delivery_waits_out_its_settle_time(ledger: Ledger, clock: FakeClock) -> None:
    delivery_id, attempt = _claimed(ledger)
    settle = clock.now + timedelta(seconds=5)
    ledger.record_error(
        delivery_id,
        attempt,
        OutcomeUnknown("read timeout"),
        state=DeliveryState.UNKNOWN,
        not_before=settle,
    )
    assert ledger.claim(delivery_id, run_id="run-b", lease=LEASE).result == ClaimResult.DEFERRED
    assert ledger.due() == [] and ledger.next_due_at() == settle
    clock.now = settle
    assert ledger.claim(delivery_id, run_id="run-b", lease=LEASE).result == ClaimResult.RECONCILE


def test_a_cancelled_delivery_is_never_claimed_again_and_never_due(ledger: Ledger) -> None:
    delivery_id, attempt = _claimed(ledger, run_id="run-a")
    cancelled = ledger.record_cancelled(delivery_id, attempt, "the post was cancelled")
    assert (cancelled.state, cancelled.error, cancelled.lease_until) == (
        DeliveryState.CANCELLED,
        "the post was cancelled",
        None,
    )
    assert ledger.claim(delivery_id, run_id="run-b", lease=LEASE).result == ClaimResult.CANCELLED
    assert ledger.due() == []
    [row] = ledger.attempts(delivery_id)
    assert row.outcome == "cancelled"
