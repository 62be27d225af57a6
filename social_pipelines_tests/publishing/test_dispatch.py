"""One due-posts sensor evaluation, on the clock: what falls due within the lead goes out in
runs of a bounded size, a post a run took comes back when the run's lease ends without it
being done (the run failed or was killed), and a post found too late is missed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from social_pipelines.models import Post
from social_pipelines.publishing.dispatch import due_runs
from social_pipelines.store import Origin, OutboxStatus
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import FakeClock

NOW = datetime(2026, 12, 24, 8, 0, tzinfo=UTC)
LEAD = timedelta(seconds=60)
LEASE = timedelta(minutes=10)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def store(tmp_path: Path, clock: FakeClock) -> Iterator[StateStore]:
    opened = StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    yield opened
    opened.dispose()


def _add(store: StateStore, post_id: str, at: datetime) -> None:
    post = Post(id=post_id, text=post_id, targets=("brand",), at=at)
    store.outbox.save(post, origin=Origin.CLI)


def _dispatch(store: StateStore, **kwargs: object):
    return due_runs(store.outbox, lead=LEAD, max_lateness=timedelta(hours=6), lease=LEASE, **kwargs)


def test_due_posts_go_in_bounded_runs_and_come_back_after_a_failed_run(
    store: StateStore, clock: FakeClock
) -> None:
    for n in range(5):
        _add(store, f"p{n}", NOW + timedelta(seconds=10 * n))  # p0..p4 within the lead
    _add(store, "later", NOW + timedelta(minutes=5))
    first = _dispatch(store, posts_per_run=2)
    assert [run.post_ids for run in first.runs] == [["p0", "p1"], ["p2", "p3"], ["p4"]]
    assert len({run.key for run in first.runs}) == 3
    assert _dispatch(store).runs == []  # taken: left alone while the runs work
    clock.advance(minutes=4)
    assert [run.post_ids for run in _dispatch(store).runs] == [["later"]]
    store.outbox.set_status("p0", OutboxStatus.DONE)  # its run finished it
    clock.advance(minutes=7)  # the first runs' lease is over: they failed or were killed
    (again,) = _dispatch(store).runs
    assert again.post_ids == ["p1", "p2", "p3", "p4"]


def test_a_post_found_too_late_is_missed_never_launched(store: StateStore) -> None:
    _add(store, "stale", NOW - timedelta(hours=7))
    _add(store, "fresh", NOW - timedelta(hours=5))
    dispatch = _dispatch(store)
    assert [run.post_ids for run in dispatch.runs] == [["fresh"]]
    assert len(dispatch.missed) == 1 and "'stale'" in dispatch.missed[0]
    stale = store.outbox.get("stale")
    assert stale is not None and stale.status == OutboxStatus.MISSED
    assert "SOCIAL_PUBLISH_MAX_LATENESS" in (stale.status_reason or "")


def test_an_evaluation_takes_a_bounded_number_and_says_so(store: StateStore) -> None:
    for n in range(5):
        _add(store, f"p{n}", NOW)
    capped = _dispatch(store, limit=3)
    assert capped.capped and sum(len(run.post_ids) for run in capped.runs) == 3
    rest = _dispatch(store, limit=3)
    assert not rest.capped and sum(len(run.post_ids) for run in rest.runs) == 2


def test_nothing_due_names_the_next_post(store: StateStore) -> None:
    assert _dispatch(store).skip_reason() == "no post is scheduled"
    _add(store, "x", NOW + timedelta(days=1))
    assert _dispatch(store).skip_reason() == "nothing due; next post at 2026-12-25 08:00:00 UTC"
