"""Posting quotas decided inside the claim, deferral, and what a later run must finish."""

from __future__ import annotations

from datetime import timedelta

from social_pipelines.errors import OutcomeUnknown, Transient
from social_pipelines.models import DeliveryState, Published
from social_pipelines.store import Claim, ClaimResult, Ledger, QuotaRule
from social_pipelines_tests.store.helpers import LEASE, FakeClock, make_draft

HOURLY = QuotaRule(limit=2, window=timedelta(hours=1))


def _send(ledger: Ledger, subject: str, **draft: str) -> str:
    plan = make_draft(subject, **draft)
    ledger.plan(plan)
    claim = ledger.claim(plan.delivery_id, run_id="run", lease=LEASE)
    assert claim.result == ClaimResult.CLAIMED
    ledger.record_sent(plan.delivery_id, claim.attempt, Published(remote_id=subject))
    return plan.delivery_id


def _claim(ledger: Ledger, subject: str, quotas: list[QuotaRule]) -> Claim:
    plan = make_draft(subject)
    ledger.plan(plan)
    return ledger.claim(plan.delivery_id, run_id="run", lease=LEASE, quotas=quotas)


def test_a_full_quota_defers_until_the_oldest_send_leaves_the_window(
    ledger: Ledger, clock: FakeClock
) -> None:
    first_sent = clock.now
    _send(ledger, "a")
    clock.advance(minutes=10)
    _send(ledger, "b")
    clock.advance(minutes=10)

    claim = _claim(ledger, "c", [HOURLY])
    assert claim.result == ClaimResult.DEFERRED
    assert claim.attempt == 0
    assert claim.record.state == DeliveryState.PLANNED
    assert claim.record.not_before == first_sent + HOURLY.window
    assert claim.record.error_kind == "quota_exhausted"
    assert ledger.attempts(claim.record.delivery_id) == []

    clock.now = first_sent + HOURLY.window - timedelta(seconds=1)
    assert (
        ledger.claim(claim.record.delivery_id, run_id="run", lease=LEASE, quotas=[HOURLY]).result
        == ClaimResult.DEFERRED
    )
    clock.now = first_sent + HOURLY.window + timedelta(seconds=1)
    due = ledger.claim(claim.record.delivery_id, run_id="run", lease=LEASE, quotas=[HOURLY])
    assert due.result == ClaimResult.CLAIMED


def test_sends_in_flight_count_against_the_quota(ledger: Ledger, clock: FakeClock) -> None:
    one = QuotaRule(limit=1, window=timedelta(hours=1))
    assert _claim(ledger, "a", [one]).result == ClaimResult.CLAIMED  # sending, lease held
    blocked = _claim(ledger, "b", [one])
    assert blocked.result == ClaimResult.DEFERRED
    assert blocked.record.not_before == clock.now + one.window


def test_other_accounts_and_unsent_rows_do_not_count(ledger: Ledger) -> None:
    _send(ledger, "x1", account_key="other@social.example")
    _send(ledger, "x2", account_key="other@social.example")
    _send(ledger, "x3", platform="bluesky")
    plan = make_draft("failed")
    ledger.plan(plan)
    claim = ledger.claim(plan.delivery_id, run_id="run", lease=LEASE)
    ledger.record_error(plan.delivery_id, claim.attempt, Transient("x"), state=DeliveryState.DEAD)
    assert _claim(ledger, "mine", [HOURLY]).result == ClaimResult.CLAIMED


def test_the_strictest_of_several_quotas_decides(ledger: Ledger, clock: FakeClock) -> None:
    daily = QuotaRule(limit=3, window=timedelta(days=1))
    first = clock.now
    _send(ledger, "a")
    clock.advance(hours=2)
    _send(ledger, "b")
    clock.advance(hours=2)
    _send(ledger, "c")
    clock.advance(hours=2)
    # The hourly quota has room; the daily one is full until the first send is a day old.
    claim = _claim(ledger, "d", [HOURLY, daily])
    assert claim.result == ClaimResult.DEFERRED
    assert claim.record.not_before == first + daily.window


def test_a_full_quota_does_not_hide_a_sent_or_held_row(ledger: Ledger) -> None:
    one = QuotaRule(limit=1, window=timedelta(hours=1))
    sent = _send(ledger, "a")
    claim = ledger.claim(sent, run_id="run", lease=LEASE, quotas=[one])
    assert claim.result == ClaimResult.SENT
    assert claim.record.remote_id == "a"


def test_defer_sets_a_not_before_on_rows_not_yet_sent(ledger: Ledger, clock: FakeClock) -> None:
    planned = make_draft("p")
    ledger.plan(planned)
    until = clock.now + timedelta(minutes=15)
    record = ledger.defer(planned.delivery_id, until, "circuit_open")
    assert (record.not_before, record.error_kind) == (until, "circuit_open")
    claim = ledger.claim(planned.delivery_id, run_id="run", lease=LEASE)
    assert claim.result == ClaimResult.DEFERRED

    sent = _send(ledger, "s")
    assert ledger.defer(sent, until, "circuit_open").not_before is None


def test_due_lists_what_a_later_run_must_finish(ledger: Ledger, clock: FakeClock) -> None:
    def _at(subject: str, state: DeliveryState, error: Exception | None = None) -> str:
        plan = make_draft(subject)
        ledger.plan(plan)
        claim = ledger.claim(plan.delivery_id, run_id="run", lease=LEASE)
        if state == DeliveryState.SENT:
            ledger.record_sent(plan.delivery_id, claim.attempt, Published(remote_id=subject))
        elif state != DeliveryState.SENDING:
            failure = error or Transient("x")
            ledger.record_error(plan.delivery_id, claim.attempt, failure, state=state)
        clock.advance(seconds=1)
        return plan.delivery_id

    planned = make_draft("planned")
    ledger.plan(planned)
    clock.advance(seconds=1)
    failed = _at("failed", DeliveryState.FAILED)
    unknown = _at("unknown", DeliveryState.UNKNOWN, OutcomeUnknown("timeout"))
    _at("sent", DeliveryState.SENT)
    _at("dead", DeliveryState.DEAD)
    abandoned = _at("abandoned", DeliveryState.SENDING)
    later = make_draft("later")
    ledger.plan(later)
    later_until = clock.now + timedelta(hours=2)
    ledger.defer(later.delivery_id, later_until, "quota_exhausted")
    clock.advance(minutes=5)
    _at("held", DeliveryState.SENDING)  # its lease is still running

    assert ledger.next_due_at() == later_until
    assert [r.delivery_id for r in ledger.due()] == [planned.delivery_id, failed, unknown]
    clock.advance(minutes=6)  # the abandoned send's lease ran out
    assert [r.delivery_id for r in ledger.due()] == [
        planned.delivery_id,
        failed,
        unknown,
        abandoned,
    ]
    clock.advance(hours=2)
    assert later.delivery_id in {r.delivery_id for r in ledger.due()}
    assert len(ledger.due(limit=2)) == 2


def test_next_due_at_is_the_earliest_not_before(ledger: Ledger, clock: FakeClock) -> None:
    assert ledger.next_due_at() is None
    for minutes, subject in ((30, "a"), (10, "b"), (20, "c")):
        plan = make_draft(subject)
        ledger.plan(plan)
        ledger.defer(plan.delivery_id, clock.now + timedelta(minutes=minutes), "rate_limited")
    due_at = ledger.next_due_at()
    assert due_at == clock.now + timedelta(minutes=10)
    assert due_at.utcoffset() == timedelta(0)
