"""Which search hits get a reply, and why the others do not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from social_pipelines.campaigns import Campaign
from social_pipelines.models import DeliveryState, Identity, SocialPost
from social_pipelines.replies.selection import AgeCutoff, Selection, age_cutoff, choose_posts

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
ME = Identity(platform="mastodon", account_id="me", handle="brand", domain="social.example")
CAMPAIGN = Campaign(
    name="mentions", account="brand", query="dagster", max_age_hours=24, blocklist=("GiveAway",)
)


def _post(
    post_id: str, hours_ago: float, *, author: str = "alice", text: str = "I like it"
) -> SocialPost:
    return SocialPost(
        platform="mastodon",
        id=post_id,
        author_id=author,
        author_handle=author,
        text=text,
        created_at=NOW - timedelta(hours=hours_ago),
    )


def _select(
    posts: list[SocialPost],
    *,
    states: dict[str, DeliveryState] | None = None,
    window_end: datetime = NOW,
    now: datetime = NOW,
    max_replies: int = 10,
    campaign: Campaign = CAMPAIGN,
) -> Selection:
    selection = choose_posts(
        posts,
        campaign=campaign,
        identity=ME,
        ledger_states=states or {},
        window_end=window_end,
        now=now,
        max_replies=max_replies,
    )
    # Every post is either a candidate or counted under exactly one reason.
    assert len(selection.candidates) + sum(selection.skipped.values()) == len(posts)
    return selection


def _ids(selection: Selection) -> list[str]:
    return [post.id for post in selection.candidates]


def test_keeps_fresh_posts_by_others_oldest_first() -> None:
    posts = [_post("new", 1), _post("mid", 5), _post("old", 20)]  # newest first, as searched
    selection = _select(posts)
    assert _ids(selection) == ["old", "mid", "new"]
    assert not selection.skipped


def test_skips_own_posts() -> None:
    selection = _select([_post("mine", 1, author="me"), _post("theirs", 1)])
    assert _ids(selection) == ["theirs"]
    assert selection.skipped == {"own_post": 1}


def test_skips_posts_already_answered_and_dead_ones() -> None:
    states = {
        "sent": DeliveryState.SENT,
        "dead": DeliveryState.DEAD,
        "failed": DeliveryState.FAILED,
        "unknown": DeliveryState.UNKNOWN,
        "planned": DeliveryState.PLANNED,
    }
    posts = [_post(post_id, 1 + n) for n, post_id in enumerate(states)]
    selection = _select(posts, states=states)
    # Rows not settled stay candidates: the ledger decides whether they go out.
    assert sorted(_ids(selection)) == ["failed", "planned", "unknown"]
    assert selection.skipped == {"already_answered": 1, "dead": 1}
    assert selection.already_answered == 1


def test_skips_posts_too_old_from_the_window_end() -> None:
    # The window is still open (it ends after now): its end is the reference.
    window_end = NOW + timedelta(hours=1)
    selection = _select([_post("edge", 23), _post("stale", 23.5)], window_end=window_end)
    assert _ids(selection) == ["edge"]
    assert selection.skipped == {"too_old": 1}


def test_a_backfill_never_answers_posts_too_old_from_now() -> None:
    # Replaying a window that ended 30 hours ago: posts from that window are now stale.
    window_end = NOW - timedelta(hours=30)
    selection = _select(
        [_post("in-old-window", 31), _post("recent-but-after", 2)], window_end=window_end
    )
    assert _ids(selection) == []
    assert selection.skipped == {"too_old": 1, "after_window": 1}


def test_the_age_limit_includes_its_boundary() -> None:
    selection = _select([_post("exactly", 24), _post("just-over", 24.0001)])
    assert _ids(selection) == ["exactly"]
    assert selection.skipped == {"too_old": 1}


def test_skips_posts_at_or_after_the_window_end() -> None:
    window_end = NOW - timedelta(hours=2)
    selection = _select(
        [_post("before", 3), _post("at-end", 2), _post("after", 1)], window_end=window_end
    )
    assert _ids(selection) == ["before"]
    assert selection.skipped == {"after_window": 2}


def test_blocklist_is_case_insensitive() -> None:
    posts = [
        _post("shout", 1, text="HUGE GIVEAWAY today"),
        _post("lower", 2, text="a giveaway!"),
        _post("clean", 3, text="Dagster question"),
    ]
    selection = _select(posts)
    assert _ids(selection) == ["clean"]
    assert selection.skipped == {"blocklisted": 2}


def test_caps_at_max_replies_keeping_the_oldest() -> None:
    posts = [_post(f"p{n}", hours) for n, hours in enumerate([1, 9, 3, 7, 5])]
    selection = _select(posts, max_replies=2)
    assert _ids(selection) == ["p1", "p3"]  # 9 and 7 hours old
    assert selection.skipped == {"over_max_replies": 3}
    assert _ids(_select(posts, max_replies=0)) == []


def test_a_post_found_twice_is_answered_once() -> None:
    selection = _select(
        [
            _post("twice", 2),
            _post("twice", 2),
            _post("mine", 1, author="me"),
            _post("mine", 1, author="me"),
        ]
    )
    assert _ids(selection) == ["twice"]
    assert selection.skipped == {"duplicate_hit": 2, "own_post": 1}


def test_duplicates_do_not_use_up_max_replies() -> None:
    posts = [_post("a", 3), _post("a", 3), _post("b", 2)]
    assert _ids(_select(posts, max_replies=2)) == ["a", "b"]


def _cutoff(*, window_end: datetime, max_age_hours: float = 5) -> AgeCutoff:
    campaign = CAMPAIGN.model_copy(update={"max_age_hours": max_age_hours})
    return age_cutoff(
        campaign, window_start=window_end - timedelta(hours=2), window_end=window_end, now=NOW
    )


def test_a_window_run_on_time_loses_nothing_to_the_age_cutoff() -> None:
    cutoff = _cutoff(window_end=NOW - timedelta(minutes=3))
    assert (cutoff.extent, cutoff.cut, cutoff.warning("c")) == ("none", timedelta(0), None)


def test_a_replayed_window_loses_the_part_before_the_cutoff_counted_from_now() -> None:
    # Window 06:00-08:00 replayed at 12:00 with max_age_hours=5: the cutoff is 07:00 (from
    # now), not 03:00 (from the window's end).
    cutoff = _cutoff(window_end=NOW - timedelta(hours=4))
    assert cutoff.oldest == NOW - timedelta(hours=5)
    assert (cutoff.extent, cutoff.cut) == ("part", timedelta(hours=1))
    assert cutoff.warning("zebras") == (
        "zebras: posts written in window 2025-03-01 06:00-08:00 UTC before the age cutoff "
        "2025-03-01 07:00:00 UTC (max_age_hours=5 before now) are not answered and were "
        "not searched (1 h 00 min of the window); the rest of the window is"
    )


def test_a_window_that_ended_before_the_cutoff_is_wholly_past_it() -> None:
    cutoff = _cutoff(window_end=NOW - timedelta(hours=5))
    assert cutoff.whole_window
    assert (cutoff.extent, cutoff.cut) == ("whole", timedelta(hours=2))
    assert cutoff.warning("zebras") == (
        "zebras: window 2025-03-01 05:00-07:00 UTC ended before the age cutoff "
        "2025-03-01 07:00:00 UTC (max_age_hours=5 before now): none of its posts may be "
        "answered any more, so it was not searched"
    )


def test_an_age_limit_shorter_than_a_window_cuts_every_run_on_time() -> None:
    # max_age_hours=1.5 run at the window's end: its first half hour is never answered.
    cutoff = _cutoff(window_end=NOW, max_age_hours=1.5)
    assert (cutoff.extent, cutoff.cut) == ("part", timedelta(minutes=30))
    assert "(30 min of the window)" in (cutoff.warning("c") or "")
