"""No post silently left unanswered past one search page (issue: 60 matches, 40 answered,
20 never seen again): 120 matching posts are all answered over two windows, our own
replies (which match the query) never crowd them out, and every limit that stops work
says so in the log and the run's metadata."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

from social_pipelines.partitions import last_complete_window, reply_windows
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.helpers import reports, run_reply_job, write_files

MATCHES = 120


@pytest.fixture
def zebra_settings(env: Path, make_settings: MakeSettings) -> Settings:
    files = write_files(
        env,
        campaigns="""
[[campaigns]]
name = "zebras"
account = "brand"
query = "zebra"
max_replies = 100
search_limit = 200
max_age_hours = 24
# Our replies contain the query: they match the search too.
template = "Thanks @{author}, happy to help with {query} questions!"
""",
    )
    return make_settings(**files)


def _windows() -> tuple[str, str]:
    last = last_complete_window()
    assert last is not None
    start = datetime.strptime(last, reply_windows.fmt).replace(tzinfo=UTC)
    return (start - timedelta(hours=2)).strftime(reply_windows.fmt), last


def _seed_matches(sandbox: SandboxProcess, count: int) -> list[str]:
    # All written before the earlier window ended (at most 4 h ago), within a day.
    posts = [
        {"author": f"rider{i % 9}", "text": f"a zebra question, number {i}", "age_minutes": 250 + i}
        for i in range(count)
    ]
    return sandbox.seed(posts)["statuses"]


def _metadata(result: ExecuteInProcessResult, step: str) -> dict:
    [metadata] = [
        event.event_specific_data.metadata
        for event in result.all_events
        if event.step_key == step and event.event_type_value == "STEP_OUTPUT"
    ]
    return {key: value.value for key, value in metadata.items()}


def _warnings(instance: DagsterInstance, run_id: str) -> list[str]:
    return [e.message for e in instance.all_logs(run_id) if e.level >= 30 and e.message]


def test_120_matches_are_all_answered_over_two_windows(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, zebra_settings: Settings
) -> None:
    demo_sandbox.reset()
    targets = set(_seed_matches(demo_sandbox, MATCHES))
    earlier, later = _windows()

    first = run_reply_job(instance, zebra_settings, partition_key=earlier)
    assert reports(first)["zebras"].new == 100
    selected = _metadata(first, "select_candidates[zebras]")
    assert selected["skipped_over_max_replies"] == 20
    assert any(
        "20 post(s) worth answering left over" in w for w in _warnings(instance, first.run_id)
    )
    searched = _metadata(first, "search_posts[zebras]")
    assert searched["found"] == MATCHES and searched["search_complete"] is True

    second = run_reply_job(instance, zebra_settings, partition_key=later)
    assert reports(second)["zebras"].new == 20
    searched = _metadata(second, "search_posts[zebras]")
    # Our 100 replies match "zebra" too, but were written after this window ended: the
    # search reads up to the window's end, so they neither count against search_limit nor
    # are looked at (our own posts inside a window are skipped: test_mastodon_search.py).
    assert searched["own_posts_skipped"] == 0
    assert searched["source"] == "search"
    assert searched["found"] == MATCHES and searched["search_complete"] is True

    answered = [status["in_reply_to_id"] for status in demo_sandbox.posted()]
    assert len(answered) == MATCHES and set(answered) == targets


def test_a_search_stopped_by_its_limit_says_what_it_left(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, zebra_settings: Settings
) -> None:
    demo_sandbox.reset()
    _seed_matches(demo_sandbox, 60)
    campaigns = zebra_settings.campaigns_file
    campaigns.write_text(campaigns.read_text().replace("search_limit = 200", "search_limit = 50"))
    result = run_reply_job(instance, zebra_settings, partition_key=_windows()[1])
    searched = _metadata(result, "search_posts[zebras]")
    assert searched["found"] == 50
    assert searched["search_complete"] is False
    assert searched["search_stopped_by"] == "search_limit=50"
    assert searched["not_examined"] == 10
    assert any(
        "stopped at search_limit=50" in w and "10 match(es)" in w
        for w in _warnings(instance, result.run_id)
    )


def test_a_search_that_finds_nothing_says_so(
    demo_sandbox: SandboxProcess, instance: DagsterInstance, zebra_settings: Settings
) -> None:
    demo_sandbox.reset()
    result = run_reply_job(instance, zebra_settings, partition_key=_windows()[1])
    assert reports(result)["zebras"].new == 0
    [warning] = [w for w in _warnings(instance, result.run_id) if "found no posts" in w]
    # It names what was read, and why a Mastodon search may find little.
    assert "search for 'zebra' found no posts" in warning
    assert "Elasticsearch" in warning and 'source = "hashtag"' in warning
