"""Racing claimants: however many runs try at once, exactly one gets each delivery."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import pytest

from social_pipelines.errors import OutcomeUnknown
from social_pipelines.models import DeliveryState
from social_pipelines.store import ClaimResult, QuotaRule
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import LEASE, claim_all, make_draft, spawn_context

T = TypeVar("T")
THREADS = 8


def _race(count: int, work: Callable[[int], T]) -> list[T]:
    """Run `work(i)` in `count` threads released together; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[T | None] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]


@pytest.fixture
def stores(store_url: str):
    """One store (engine and pool of its own) per thread, like separate run processes."""
    opened = [StateStore(store_url) for _ in range(THREADS)]
    yield opened
    for store in opened:
        store.dispose()


def test_threads_claiming_one_delivery_exactly_one_wins(stores: list[StateStore]) -> None:
    draft = make_draft()
    stores[0].ledger.plan(draft)
    results = _race(
        THREADS,
        lambda i: stores[i].ledger.claim(draft.delivery_id, run_id=f"run-{i}", lease=LEASE),
    )
    tally = Counter(claim.result for claim in results)
    assert tally == {ClaimResult.CLAIMED: 1, ClaimResult.IN_FLIGHT: THREADS - 1}
    [winner] = [i for i, claim in enumerate(results) if claim.result == ClaimResult.CLAIMED]
    record = stores[0].ledger.get(draft.delivery_id)
    assert (record.state, record.attempts, record.run_id) == (
        DeliveryState.SENDING,
        1,
        f"run-{winner}",
    )
    assert len(stores[0].ledger.attempts(draft.delivery_id)) == 1


def test_threads_claiming_an_unknown_delivery_exactly_one_reconciles(
    stores: list[StateStore],
) -> None:
    ledger = stores[0].ledger
    draft = make_draft()
    ledger.plan(draft)
    first = ledger.claim(draft.delivery_id, run_id="run-0", lease=LEASE)
    ledger.record_error(
        draft.delivery_id, first.attempt, OutcomeUnknown("timeout"), state=DeliveryState.UNKNOWN
    )
    results = _race(
        THREADS,
        lambda i: stores[i].ledger.claim(draft.delivery_id, run_id=f"run-{i}", lease=LEASE),
    )
    tally = Counter(claim.result for claim in results)
    assert tally == {ClaimResult.RECONCILE: 1, ClaimResult.IN_FLIGHT: THREADS - 1}
    assert ledger.get(draft.delivery_id).attempts == 2


def test_threads_planning_one_delivery_with_other_texts_keep_one_row(
    stores: list[StateStore],
) -> None:
    records = _race(
        THREADS, lambda i: stores[i].ledger.plan(make_draft(text=f"wording number {i}"))
    )
    assert len({record.text for record in records}) == 1
    assert len(stores[0].ledger.list()) == 1


def test_processes_claiming_the_same_deliveries_exactly_one_wins_each(store_url: str) -> None:
    store = StateStore(store_url)
    ids = [store.ledger.plan(make_draft(f"post-{n}")).delivery_id for n in range(25)]
    store.dispose()

    context = spawn_context()
    barrier = context.Barrier(2)
    queue = context.Queue()
    processes = [
        context.Process(target=claim_all, args=(store_url, ids, f"proc-{n}", barrier, queue))
        for n in range(2)
    ]
    for process in processes:
        process.start()
    reports = dict(queue.get(timeout=90) for _ in processes)
    for process in processes:
        process.join(timeout=30)
    for run_id, results in reports.items():
        assert isinstance(results, list), f"{run_id} failed: {results}"

    by_delivery: dict[str, list[str]] = {}
    for results in reports.values():
        for delivery_id, result in results:
            by_delivery.setdefault(delivery_id, []).append(result)
    assert set(by_delivery) == set(ids)
    for delivery_id, results in by_delivery.items():
        assert sorted(results) == ["claimed", "in_flight"], delivery_id

    check = StateStore(store_url)
    try:
        for record in check.ledger.list():
            assert record.attempts == 1
            assert len(check.ledger.attempts(record.delivery_id)) == 1
    finally:
        check.dispose()


def test_racing_claims_cannot_overshoot_a_quota(stores: list[StateStore]) -> None:
    quota = QuotaRule(limit=3, window=timedelta(hours=1))
    drafts = [make_draft(f"post-{i}") for i in range(THREADS)]
    for draft in drafts:
        stores[0].ledger.plan(draft)
    results = _race(
        THREADS,
        lambda i: stores[i].ledger.claim(
            drafts[i].delivery_id, run_id=f"run-{i}", lease=LEASE, quotas=[quota]
        ),
    )
    tally = Counter(claim.result for claim in results)
    assert tally == {ClaimResult.CLAIMED: 3, ClaimResult.DEFERRED: THREADS - 3}
