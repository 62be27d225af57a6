"""due_posts_sensor: syncs the calendar at every tick, launches runs a little before posts
fall due (several posts per run), leaves taken posts alone while their run works, marks
what is found too late as missed, and survives any calendar thrown at it."""

from __future__ import annotations

import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance, RunRequest, SensorResult, SkipReason, build_sensor_context
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from social_pipelines.definitions import build_definitions
from social_pipelines.models import PostState
from social_pipelines.publishing.states import post_view
from social_pipelines.settings import Settings
from social_pipelines.store import Origin
from social_pipelines.wiring import wire_settings
from social_pipelines_tests.pipeline.conftest import MakeSettings
from social_pipelines_tests.pipeline.test_publish_job import run_publish_job


def _tick(instance: DagsterInstance, settings: Settings, cursor: str | None = None):
    defs = build_definitions(settings)
    sensor = defs.get_sensor_def("due_posts_sensor")
    with build_sensor_context(
        instance=instance, cursor=cursor, resources=defs.resources
    ) as context:
        return sensor(context)


def _requests(result: object) -> list[RunRequest]:
    if isinstance(result, SensorResult):
        return list(result.run_requests or [])
    return []


def _calendar(folder: Path, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "posts.yaml").write_text(textwrap.dedent(body), encoding="utf-8")
    return folder


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def test_the_sensor_syncs_launches_once_and_marks_late_posts_missed(
    instance: DagsterInstance, make_settings: MakeSettings, env: Path
) -> None:
    now = datetime.now(UTC)
    calendar = _calendar(
        env / "calendar",
        f"""\
        - id: soon
          at: {_iso(now + timedelta(seconds=4))}
          to: brand
          text: Due within the lead
        - id: next-week
          at: {_iso(now + timedelta(days=7))}
          to: brand
          text: Not yet
        - id: stale
          at: {_iso(now - timedelta(hours=8))}
          to: brand
          text: Far too late
        - id: broken
          at: tomorrow
          to: brand
          text: A bad entry
        """,
    )
    settings = make_settings(calendar_dir=calendar)
    first = _tick(instance, settings)
    (request,) = _requests(first)
    assert request.run_config["ops"]["plan_publishes"]["config"]["post_ids"] == ["soon"]
    outbox = wire_settings(settings).store.outbox
    stale = outbox.get("stale")
    assert stale is not None and stale.status == "missed"
    assert outbox.get("broken") is None  # refused, reported, never half-synced
    # The run has it: the next tick launches nothing for it.
    second = _tick(
        instance, settings, cursor=first.cursor if isinstance(first, SensorResult) else None
    )
    assert _requests(second) == []
    # The launched run publishes it at its time (waiting in the step until then).
    result = run_publish_job(
        instance, settings, **request.run_config["ops"]["plan_publishes"]["config"]
    )
    assert result.success
    record = outbox.get("soon")
    assert record is not None
    view = post_view(record, outbox.deliveries([record])["soon"], outbox.clock())
    assert view.state == PostState.PUBLISHED
    assert view.targets[0].delivery is not None
    sent_at = view.targets[0].delivery.sent_at
    assert sent_at is not None and sent_at >= record.post.at


def test_a_calendar_without_posts_due_skips_with_the_next_time(
    instance: DagsterInstance, make_settings: MakeSettings, env: Path
) -> None:
    later = datetime.now(UTC) + timedelta(days=2)
    calendar = _calendar(
        env / "calendar", f"- id: later\n  at: {_iso(later)}\n  to: brand\n  text: Later\n"
    )
    result = _tick(instance, make_settings(calendar_dir=calendar))
    assert isinstance(result, SensorResult) and not result.run_requests
    assert "nothing due; next post at" in str(result.skip_reason)


def test_a_broken_accounts_file_is_reported_and_cli_posts_still_go(
    instance: DagsterInstance, make_settings: MakeSettings, env: Path
) -> None:
    from social_pipelines.models import Post

    good = make_settings()
    wire_settings(good).store.outbox.save(
        Post(id="cli-post", text="From the shell", targets=("brand",), at=datetime.now(UTC)),
        origin=Origin.CLI,
    )
    accounts = env / "broken.toml"
    accounts.write_text("[accounts.brand]\nplatform = 'nowhere'\n", encoding="utf-8")
    calendar = _calendar(env / "calendar", "[]\n")
    result = _tick(instance, make_settings(calendar_dir=calendar, accounts_file=accounts))
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests or []
    assert request.run_config["ops"]["plan_publishes"]["config"]["post_ids"] == ["cli-post"]


_JUNK = st.one_of(
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.text(max_size=200),
    st.sampled_from(["- id: [", "posts: 3", "- {id: x, at: 5}", "{", "- id: ok\n  to: nobody"]),
)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(junk=_JUNK, valid=st.integers(min_value=1, max_value=3))
def test_no_calendar_crashes_the_sensor_and_no_valid_post_is_lost(
    instance: DagsterInstance, make_settings: MakeSettings, env: Path, junk: str, valid: int
) -> None:
    calendar = Path(tempfile.mkdtemp(prefix="calendar-", dir=env))
    at = _iso(datetime.now(UTC) + timedelta(days=1))
    good = "".join(
        f"- id: good-{calendar.name}-{n}\n  at: {at}\n  to: brand\n  text: Good {n}\n"
        for n in range(valid)
    )
    (calendar / "good.yaml").write_text(good, encoding="utf-8")
    (calendar / "junk.yaml").write_text(junk, encoding="utf-8")
    settings = make_settings(calendar_dir=calendar)
    result = _tick(instance, settings)
    assert isinstance(result, (SkipReason, SensorResult))
    outbox = wire_settings(settings).store.outbox
    for n in range(valid):
        assert outbox.get(f"good-{calendar.name}-{n}") is not None
    report = wire_settings(settings).sync_calendar()
    assert report is not None
    assert all("junk.yaml" in problem for problem in report.problems)


def test_posts_for_an_account_needing_reconnection_are_held_with_the_reason(
    instance: DagsterInstance, make_settings: MakeSettings
) -> None:
    """A marked account's posts are not launched: the sensor says which and why, and a post
    that also goes elsewhere still goes there (the plan holds the marked account's part)."""
    from social_pipelines.models import Post

    settings = make_settings()
    wiring = wire_settings(settings)
    now = datetime.now(UTC)
    wiring.store.outbox.save(
        Post(id="news-only", text="For the news account", targets=("brand_news",), at=now),
        origin=Origin.CLI,
    )
    wiring.tokens.mark_reconnect("mastodon", "brand_news", "access token refused (HTTP 401)")
    held = _tick(instance, settings)
    assert isinstance(held, SensorResult) and not held.run_requests
    assert "held" in str(held.skip_reason) and "news-only" in str(held.skip_reason)
    assert "reconnect needed: access token refused" in str(held.skip_reason)
    wiring.store.outbox.save(
        Post(id="both", text="For both accounts", targets=("brand", "brand_news"), at=now),
        origin=Origin.CLI,
    )
    result = _tick(instance, settings)
    assert isinstance(result, SensorResult)
    (request,) = result.run_requests or []
    assert request.run_config["ops"]["plan_publishes"]["config"]["post_ids"] == ["both"]
    result = run_publish_job(instance, settings, post_ids=["both"])
    assert result.success
    outbox = wiring.store.outbox
    record = outbox.get("both")
    assert record is not None
    both = post_view(record, outbox.deliveries([record])["both"], outbox.clock())
    assert both.target("brand").state == "published"
    assert both.target("brand_news").state == "due"  # held, not lost: it goes once accepted
