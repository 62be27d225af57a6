"""The calendar synced into the outbox: edits revise, removals cancel what is not out, a
typo never cancels, an edit after publishing is reported and never taken, and a target the
post cannot fit is refused with the reason while the others go on."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from social_pipelines.calendar import load_calendar
from social_pipelines.models import DeliveryKind, Post, PostState, Published, publish_subject
from social_pipelines.platforms.content import check_target, static_rules
from social_pipelines.publishing.intake import sync_calendar
from social_pipelines.publishing.states import TargetState, post_view
from social_pipelines.store import OutboxStatus
from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import LEASE, FakeClock, make_draft

AT = datetime(2026, 12, 24, 8, 0, tzinfo=UTC)
PLATFORMS = {"brand": "mastodon", "brand_bsky": "bluesky"}


def check(post: Post, target: str) -> list[str]:
    return [str(p) for p in check_target(post, target, static_rules(PLATFORMS[target]))]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    clock = FakeClock(AT - timedelta(hours=1))
    opened = StateStore(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    yield opened
    opened.dispose()


def _calendar(folder: Path, name: str, body: str) -> None:
    (folder / "calendar").mkdir(exist_ok=True)
    (folder / "calendar" / name).write_text(textwrap.dedent(body), encoding="utf-8")


def _sync(store: StateStore, folder: Path):
    load = load_calendar(folder / "calendar", set(PLATFORMS), default_timezone=None)
    return sync_calendar(store.outbox, load, check)


ENTRY = """\
- id: launch
  at: 2026-12-24T09:00:00+01:00
  to: [brand, brand_bsky]
  text: "{text}"
- id: later
  at: 2026-12-25T09:00:00Z
  to: brand
  text: Merry Christmas
"""


def _view(store: StateStore, post_id: str):
    record = store.outbox.get(post_id)
    assert record is not None
    return post_view(record, store.outbox.deliveries([record])[post_id], store.outbox.clock())


def test_edits_revise_removals_cancel_and_restores_bring_back(
    store: StateStore, tmp_path: Path
) -> None:
    _calendar(tmp_path, "december.yaml", ENTRY.format(text="We launched!"))
    first = _sync(store, tmp_path)
    assert sorted(first.created) == ["later", "launch"] and not first.problems
    assert _view(store, "launch").state == PostState.SCHEDULED
    assert sorted(_sync(store, tmp_path).unchanged) == ["later", "launch"]

    _calendar(tmp_path, "december.yaml", ENTRY.format(text="We launched today!"))
    assert _sync(store, tmp_path).revised == ["launch"]
    assert [r.post.text for r in store.outbox.revisions("launch")] == [
        "We launched!",
        "We launched today!",
    ]

    _calendar(tmp_path, "december.yaml", ENTRY.format(text="x").split("- id: later")[0])
    removed = _sync(store, tmp_path)
    assert removed.withdrawn == ["later"]
    assert _view(store, "later").state == PostState.CANCELLED

    _calendar(tmp_path, "december.yaml", ENTRY.format(text="We launched today!"))
    assert "later" in _sync(store, tmp_path).revised
    assert _view(store, "later").state == PostState.SCHEDULED


def test_an_unreadable_file_or_entry_never_cancels_its_posts(
    store: StateStore, tmp_path: Path
) -> None:
    _calendar(tmp_path, "december.yaml", ENTRY.format(text="We launched!"))
    _sync(store, tmp_path)
    _calendar(tmp_path, "december.yaml", ENTRY.format(text="We launched!") + "  oops: [\n")
    broken = _sync(store, tmp_path)
    assert broken.problems and not broken.withdrawn
    assert sorted(broken.kept_unreadable) == ["later", "launch"]
    # One bad field in one entry: that post is kept as it was, the other synced.
    _calendar(
        tmp_path,
        "december.yaml",
        ENTRY.format(text="We launched!").replace("2026-12-25T09:00:00Z", "tomorrow"),
    )
    typo = _sync(store, tmp_path)
    assert typo.kept_unreadable == ["later"] and typo.unchanged == ["launch"]
    later = store.outbox.get("later")
    assert later is not None and later.status == OutboxStatus.OPEN


def test_an_edit_after_publishing_is_reported_and_never_taken(
    store: StateStore, tmp_path: Path
) -> None:
    _calendar(tmp_path, "december.yaml", ENTRY.format(text="We launched!"))
    _sync(store, tmp_path)
    draft = make_draft(
        publish_subject("launch", "brand"), kind=DeliveryKind.PUBLISH, text="We launched!"
    )
    claim = store.ledger.plan_and_claim(draft, run_id="r", lease=LEASE)
    store.ledger.record_sent(draft.delivery_id, claim.attempt, Published(remote_id="1"))
    _calendar(tmp_path, "december.yaml", ENTRY.format(text="Edited"))
    report = _sync(store, tmp_path)
    assert report.changed_after_publishing == ["launch"]
    assert any("changed after publishing" in line for line in report.lines())
    launch = store.outbox.get("launch")
    assert launch is not None and launch.post.text == "We launched!"


def test_a_target_the_post_cannot_fit_is_refused_and_the_others_go_on(
    store: StateStore, tmp_path: Path
) -> None:
    # 400 characters: within Mastodon's 500, beyond Bluesky's 300 graphemes.
    _calendar(tmp_path, "december.yaml", ENTRY.format(text="a" * 400))
    report = _sync(store, tmp_path)
    assert list(report.refused_targets) == ["launch"]
    assert "300" in report.refused_targets["launch"]["brand_bsky"]
    view = _view(store, "launch")
    assert view.target("brand_bsky").state == TargetState.REFUSED
    assert view.target("brand").state == TargetState.SCHEDULED
