"""The Mastodon adapter's other reply sources against the real sandbox: a hashtag timeline
and the account's mentions, paged by `max_id` back to `since`, up to `until`, with our own
posts never taking the place of others' and every limit that stopped a read said so."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from social_pipelines.errors import ConfigError
from social_pipelines.platforms.capabilities import Source
from social_pipelines.platforms.mastodon import SPEC, MastodonPlatform
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.doors import RecordingDoor
from social_pipelines_tests.sandbox.fixtures import sandbox, sandbox_server  # noqa: F401


@pytest.fixture
def door() -> RecordingDoor:
    return RecordingDoor()


@pytest.fixture
def brand(sandbox: SandboxProcess, door: RecordingDoor) -> Iterator[MastodonPlatform]:  # noqa: F811
    platform = MastodonPlatform(sandbox.url, "sandbox-token-brand", door=door, timeout=5)
    yield platform
    platform.close()


def _ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


def _ids(sandbox: SandboxProcess, posts: list[dict]) -> list[str]:  # noqa: F811
    return sandbox.seed(posts)["statuses"]


def _newest_first(result) -> bool:
    return [p.created_at for p in result.posts] == sorted(
        (p.created_at for p in result.posts), reverse=True
    )


def test_mastodon_declares_search_first_then_hashtag_and_mentions() -> None:
    assert SPEC.sources == (Source.SEARCH, Source.HASHTAG, Source.MENTIONS)


# -- hashtag ------------------------------------------------------------------------------


def test_a_hashtag_timeline_pages_back_past_one_page_and_skips_our_own_posts(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
    door: RecordingDoor,
) -> None:
    tagged = _ids(
        sandbox,
        [
            {"author": f"user{i % 7}", "text": f"question {i} #Dagster", "age_minutes": 60 + i}
            for i in range(100)
        ],
    )
    sandbox.seed(
        # Ours, interleaved; untagged, or another tag that merely starts the same way.
        [
            {"author": "brand", "text": f"ours {i} #dagster", "age_minutes": 61 + 2 * i}
            for i in range(30)
        ]
        + [{"author": "user1", "text": f"dagster {i}", "age_minutes": 70 + i} for i in range(10)]
        + [{"author": "user2", "text": "#dagsterio", "age_minutes": 80}]
        + [{"author": "user3", "text": "old #dagster", "age_minutes": 60 * 30}]
    )
    result = brand.search("#dagster", limit=200, since=_ago(24 * 60), source=Source.HASHTAG)
    assert sorted(post.id for post in result.posts) == sorted(tagged)
    assert result.own_skipped == 30
    assert result.complete and result.not_examined == 0 and not result.more_beyond
    assert _newest_first(result)
    # 131 statuses carry the tag at 40 a page; the fourth is not all older than `since`
    # (only its last one is), so the empty fifth ends the read.
    assert result.pages == 5
    # Every request passed the door, as a read (the shared account bucket).
    assert {p.endpoint for p in door.passages} == {"read"}
    assert all(p.sent and p.status == 200 for p in door.passages)


def test_the_tag_may_be_written_without_its_hash_and_in_any_case(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    [one] = _ids(sandbox, [{"author": "etl_ed", "text": "#DataEngineering rocks"}])
    for query in ("dataengineering", "#DataEngineering", " DATAENGINEERING "):
        result = brand.search(query, limit=10, since=_ago(60), source=Source.HASHTAG)
        assert [post.id for post in result.posts] == [one]


def test_a_hashtag_timeline_ends_at_an_empty_page_not_a_short_one(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    """Mastodon links a next page whenever a page has anything; a short page is not the
    end (statuses can be filtered out after paging), the empty one is."""
    _ids(sandbox, [{"author": "etl_ed", "text": f"#rare {i}", "age_minutes": i} for i in range(3)])
    result = brand.search("rare", limit=10, since=_ago(60), source=Source.HASHTAG)
    assert len(result.posts) == 3 and result.complete and result.pages == 2


def test_posts_after_until_are_skipped_and_do_not_count_against_the_limit(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    # 60 posts newer than `until` (the next window's), then 30 in the window, then 10 older
    # than `since`.
    newer = _ids(
        sandbox, [{"author": "user1", "text": f"#zebra {i}", "age_minutes": i} for i in range(60)]
    )
    inside = _ids(
        sandbox,
        [{"author": "user2", "text": f"#zebra {i}", "age_minutes": 120 + i} for i in range(30)],
    )
    _ids(
        sandbox,
        [{"author": "user3", "text": f"#zebra {i}", "age_minutes": 600 + i} for i in range(10)],
    )
    until, since = _ago(100), _ago(300)
    result = brand.search("zebra", limit=31, since=since, until=until, source=Source.HASHTAG)
    assert sorted(post.id for post in result.posts) == sorted(inside)
    assert not set(newer) & {post.id for post in result.posts}
    assert all(since <= post.created_at < until for post in result.posts)
    # Room for the window's 30 was left: the 60 newer ones used none of the limit.
    assert result.complete and result.not_examined == 0 and result.pages == 4


def test_a_hashtag_read_stopped_by_its_limit_says_how_much_it_left(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    _ids(sandbox, [{"author": "user1", "text": f"#zebra {i}", "age_minutes": i} for i in range(60)])
    result = brand.search("zebra", limit=50, since=_ago(600), source=Source.HASHTAG)
    assert len(result.posts) == 50 and not result.complete
    assert result.stopped_by == "search_limit=50"
    assert result.not_examined == 10  # the rest of the second page of 40
    assert result.more_beyond


def test_the_page_cap_stops_a_read_and_says_so(
    sandbox: SandboxProcess,  # noqa: F811
    door: RecordingDoor,
) -> None:
    _ids(
        sandbox, [{"author": "user1", "text": f"#zebra {i}", "age_minutes": i} for i in range(100)]
    )
    with MastodonPlatform(
        sandbox.url, "sandbox-token-brand", door=door, timeout=5, max_pages=2
    ) as capped:
        result = capped.search("zebra", limit=200, since=_ago(600), source=Source.HASHTAG)
    assert len(result.posts) == 80 and result.pages == 2
    assert not result.complete and result.stopped_by == "2 pages" and result.more_beyond


def test_own_posts_never_fill_the_limit_of_a_hashtag_read(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    sandbox.seed(
        [{"author": "user3", "text": f"#help {i}", "age_minutes": 300 + i} for i in range(5)]
        + [{"author": "brand", "text": f"#help reply {i}", "age_minutes": i} for i in range(90)]
    )
    result = brand.search("help", limit=40, since=_ago(24 * 60), source=Source.HASHTAG)
    assert len(result.posts) == 5 and result.own_skipped == 90 and result.complete


def test_a_query_that_is_not_one_hashtag_is_refused(brand: MastodonPlatform) -> None:
    with pytest.raises(ConfigError, match="'hashtag' reads one hashtag; 'data pipeline'"):
        brand.search("data pipeline", limit=5, since=_ago(60), source=Source.HASHTAG)


# -- mentions -----------------------------------------------------------------------------


def test_mentions_page_back_by_notification_id_and_the_query_filters_them(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
    door: RecordingDoor,
) -> None:
    asking = _ids(
        sandbox,
        [
            {"author": f"user{i % 5}", "text": f"@brand a Dagster question {i}", "age_minutes": i}
            for i in range(100)
        ],
    )
    sandbox.seed(
        # Mentions the query leaves out, mentions of someone else, followers-only and
        # direct mentions (a public answer would expose them), and one too old.
        [{"author": "user1", "text": f"@brand lunch {i}?", "age_minutes": 3 + i} for i in range(20)]
        + [{"author": "user2", "text": "@datadiana dagster?", "age_minutes": 5}]
        + [{"author": "user3", "text": "@brand dagster, privately", "visibility": "private"}]
        + [{"author": "user3", "text": "@brand dagster, directly", "visibility": "direct"}]
        + [{"author": "user4", "text": "@brand dagster, long ago", "age_minutes": 60 * 30}]
    )
    result = brand.search("dagster", limit=200, since=_ago(24 * 60), source=Source.MENTIONS)
    assert sorted(post.id for post in result.posts) == sorted(asking)
    assert _newest_first(result)
    assert result.complete and result.own_skipped == 0
    # 123 mentions of brand at 80 a page, paged by the notification's id (never a status
    # id: that cursor would repeat or skip posts); the empty third page ends the read.
    assert result.pages == 3
    assert {p.endpoint for p in door.passages} == {"read"}
    # `*` keeps every answerable mention.
    everything = brand.search("*", limit=200, since=_ago(24 * 60), source=Source.MENTIONS)
    assert len(everything.posts) == 120


def test_mentions_respect_until_since_and_the_limit(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    _ids(
        sandbox,
        [{"author": "user1", "text": f"@brand new {i}", "age_minutes": i} for i in range(30)],
    )
    inside = _ids(
        sandbox,
        [{"author": "user2", "text": f"@brand hi {i}", "age_minutes": 60 + i} for i in range(100)],
    )
    _ids(sandbox, [{"author": "user3", "text": "@brand old", "age_minutes": 500}])
    until, since = _ago(50), _ago(400)
    result = brand.search("*", limit=90, since=since, until=until, source=Source.MENTIONS)
    # 30 newer ones skipped, not counted: 90 of the window's 100 taken from two pages.
    assert len(result.posts) == 90 and set(p.id for p in result.posts) <= set(inside)
    assert not result.complete and result.stopped_by == "search_limit=90"
    assert result.not_examined == 10 and result.more_beyond
    whole = brand.search("*", limit=200, since=since, until=until, source=Source.MENTIONS)
    assert sorted(p.id for p in whole.posts) == sorted(inside) and whole.complete


def test_the_page_cap_stops_a_mentions_read_and_says_so(
    sandbox: SandboxProcess,  # noqa: F811
    door: RecordingDoor,
) -> None:
    _ids(
        sandbox, [{"author": "user1", "text": f"@brand {i}", "age_minutes": i} for i in range(100)]
    )
    with MastodonPlatform(
        sandbox.url, "sandbox-token-brand", door=door, timeout=5, max_pages=1
    ) as capped:
        result = capped.search("*", limit=200, since=_ago(600), source=Source.MENTIONS)
    assert len(result.posts) == 80 and result.pages == 1
    assert not result.complete and result.stopped_by == "1 pages" and result.more_beyond


def test_a_mention_is_read_as_its_status(
    sandbox: SandboxProcess,  # noqa: F811
    brand: MastodonPlatform,
) -> None:
    [status] = _ids(sandbox, [{"author": "etl_ed", "text": "@brand does it work?"}])
    [post] = brand.search("*", limit=5, since=_ago(60), source=Source.MENTIONS).posts
    assert post.id == status and post.author_handle == "etl_ed"
    assert post.text == "@brand does it work?"
    assert post.url == f"{sandbox.url}/@etl_ed/{status}"
