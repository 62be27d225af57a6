"""The Mastodon adapter's search against the real sandbox: it pages back to the oldest post
asked for, never lets the account's own posts take the place of others', and says when a
limit stopped it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from social_pipelines.platforms.mastodon import MastodonPlatform
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.sandbox.fixtures import sandbox, sandbox_server  # noqa: F401


@pytest.fixture
def brand(sandbox: SandboxProcess) -> Iterator[MastodonPlatform]:  # noqa: F811
    platform = MastodonPlatform(sandbox.url, "sandbox-token-brand", door=RecordingDoor(), timeout=5)
    yield platform
    platform.close()


def _seed(sandbox: SandboxProcess, *, others: int, own: int, old: int = 0) -> None:  # noqa: F811
    posts = [
        {"author": f"user{i % 7}", "text": f"dagster question {i}", "age_minutes": 60 + i}
        for i in range(others)
    ]
    # Our own replies match the query too (the shipped template contains it), interleaved.
    posts += [
        {"author": "brand", "text": f"happy to help with dagster {i}", "age_minutes": 61 + 2 * i}
        for i in range(own)
    ]
    posts += [
        {"author": "user1", "text": f"old dagster post {i}", "age_minutes": 60 * 30 + i}
        for i in range(old)
    ]
    sandbox.seed(posts)


def _since(hours: float = 24) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def test_search_pages_back_past_one_page_and_skips_our_own_posts(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    _seed(sandbox, others=120, own=60, old=10)
    result = brand.search("dagster", limit=200, since=_since())
    assert len(result.posts) == 120
    assert len({post.id for post in result.posts}) == 120
    assert all(post.author_handle != "brand" for post in result.posts)
    assert result.own_skipped == 60
    assert result.complete and result.not_examined == 0 and not result.more_beyond
    assert result.pages >= 5  # 190 matches at 40 a page
    # Newest first, and nothing older than asked for.
    assert [p.created_at for p in result.posts] == sorted(
        (p.created_at for p in result.posts), reverse=True
    )
    assert min(p.created_at for p in result.posts) >= _since()


def test_a_search_stopped_by_its_limit_says_how_much_it_left(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    _seed(sandbox, others=120, own=0)
    result = brand.search("dagster", limit=50, since=_since())
    assert len(result.posts) == 50
    assert not result.complete
    assert result.stopped_by == "search_limit=50"
    assert result.not_examined == 30  # the rest of the second page of 40
    assert result.more_beyond


def test_own_posts_never_count_against_the_limit(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    """Even when our own posts alone would fill the first pages."""
    sandbox.seed(
        [{"author": "user3", "text": f"dagster help {i}", "age_minutes": 300 + i} for i in range(5)]
        + [{"author": "brand", "text": f"dagster reply {i}", "age_minutes": i} for i in range(90)]
    )
    result = brand.search("dagster", limit=40, since=_since())
    assert len(result.posts) == 5 and result.own_skipped == 90 and result.complete


def test_search_that_finds_nothing_is_complete_and_empty(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    _seed(sandbox, others=3, own=0)
    result = brand.search("nothing-matches-this", limit=40, since=_since())
    assert result.posts == [] and result.complete and result.pages == 1
