"""publish_job end to end against the real sandbox: every target once with its images
rendered, a cancel that wins, a late post marked missed, a dead target retried, a quota
deferral sent by redelivery, and a re-executed run that sends nothing twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dagster import (
    DagsterInstance,
    ExecuteInProcessResult,
    ReexecutionOptions,
    execute_job,
    reconstructable,
)
from PIL import Image

from social_pipelines.definitions import build_definitions
from social_pipelines.models import Post, PostImage, PostState
from social_pipelines.publishing.retry import retry
from social_pipelines.publishing.states import TargetState, post_view
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.store import Origin
from social_pipelines.wiring import wire_settings
from social_pipelines_tests.pipeline.conftest import MakeSettings


def run_publish_job(
    instance: DagsterInstance, settings: Settings, *, raise_on_error: bool = True, **config: Any
) -> ExecuteInProcessResult:
    return (
        build_definitions(settings)
        .get_job_def("publish_job")
        .execute_in_process(
            instance=instance,
            run_config={"ops": {"plan_publishes": {"config": config}}},
            raise_on_error=raise_on_error,
        )
    )


def _photo(path: Path, *, orientation: int | None = None) -> Path:
    image = Image.new("RGB", (400, 300), (200, 40, 40))
    image.paste((40, 40, 200), (0, 0, 100, 100))
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    image.save(path, quality=90, exif=exif.tobytes())
    return path


def _schedule(settings: Settings, post_id: str, **fields: Any) -> Post:
    values: dict[str, Any] = {
        "id": post_id,
        "text": f"Post {post_id}",
        "targets": ("brand", "brand_news"),
        "at": datetime.now(UTC) - timedelta(seconds=1),
    }
    values.update(fields)
    post = Post.model_validate(values)
    wire_settings(settings).store.outbox.save(post, origin=Origin.CLI)
    return post


def _state(settings: Settings, post_id: str):
    outbox = wire_settings(settings).store.outbox
    record = outbox.get(post_id)
    assert record is not None
    return post_view(record, outbox.deliveries([record])[post_id], outbox.clock())


def test_each_target_gets_the_post_once_with_its_image_upright(
    instance: DagsterInstance, settings: Settings, demo_sandbox: SandboxProcess, env: Path
) -> None:
    photo = _photo(env / "sideways.jpg", orientation=6)
    _schedule(settings, "launch", images=(PostImage(source=str(photo), alt="a red card"),))
    result = run_publish_job(instance, settings)
    assert result.success
    view = _state(settings, "launch")
    assert view.state == PostState.PUBLISHED
    for account in ("brand", "brand_news"):
        (status,) = demo_sandbox.posted(account)
        with demo_sandbox.client(account) as client:
            shown = client.get(f"/api/v1/statuses/{status['id']}").json()
        (media,) = shown["media_attachments"]
        # Orientation 6 applied: the 400x300 source is shown 300 wide, 400 high.
        assert media["meta"]["original"]["width"] == 300
        assert media["meta"]["original"]["height"] == 400
        assert media["description"] == "a red card"
        assert view.target(account).url == status["url"]
    urls = {
        event.step_key: event.event_specific_data.metadata["launch"].value  # type: ignore[union-attr]
        for event in result.all_events
        if event.event_type_value == "STEP_OUTPUT" and event.step_key.startswith("publish_")
    }
    assert sorted(urls.values()) == sorted(t.url for t in view.targets)
    again = run_publish_job(instance, settings, post_ids=["launch"])
    assert again.success
    assert len(demo_sandbox.posted("brand")) == 1 and len(demo_sandbox.posted("brand_news")) == 1


def test_a_cancel_a_moment_before_the_post_is_due_wins(
    instance: DagsterInstance, settings: Settings, demo_sandbox: SandboxProcess
) -> None:
    _schedule(settings, "soon", at=datetime.now(UTC) + timedelta(seconds=3))
    done: list[ExecuteInProcessResult] = []
    runner = threading.Thread(
        target=lambda: done.append(run_publish_job(instance, settings, post_ids=["soon"]))
    )
    runner.start()
    time.sleep(1.5)  # the run is waiting for the post's time
    wire_settings(settings).store.outbox.cancel("soon", "cancelled by a test")
    runner.join(timeout=60)
    assert done and done[0].success
    assert demo_sandbox.posted("brand") == [] and demo_sandbox.posted("brand_news") == []
    view = _state(settings, "soon")
    assert view.state == PostState.CANCELLED
    assert {t.state for t in view.targets} == {TargetState.CANCELLED}


def test_a_post_found_too_late_is_missed_and_only_forced_out(
    instance: DagsterInstance, settings: Settings, demo_sandbox: SandboxProcess
) -> None:
    _schedule(settings, "stale", at=datetime.now(UTC) - timedelta(hours=7))
    assert run_publish_job(instance, settings).success
    assert _state(settings, "stale").state == PostState.MISSED
    assert demo_sandbox.posted("brand") == []
    assert run_publish_job(instance, settings, post_ids=["stale"]).success
    assert demo_sandbox.posted("brand") == []  # still missed: not forced
    assert run_publish_job(instance, settings, post_ids=["stale"], force_late=True).success
    assert _state(settings, "stale").state == PostState.PUBLISHED
    assert len(demo_sandbox.posted("brand")) == 1
    stale = wire_settings(settings).store.outbox.get("stale")
    assert stale is not None and stale.status == "done"  # finished, no longer missed


def test_a_dead_target_is_sent_again_by_retry(
    instance: DagsterInstance, settings: Settings, demo_sandbox: SandboxProcess, env: Path
) -> None:
    broken = env / "broken.jpg"
    broken.write_bytes(b"not an image at all")
    _schedule(
        settings,
        "fixme",
        targets=("brand",),
        images=(PostImage(source=str(broken), alt="a photo"),),
    )
    failed = run_publish_job(instance, settings, raise_on_error=False)
    assert not failed.success
    view = _state(settings, "fixme")
    assert view.target("brand").state == TargetState.DEAD
    assert "broken.jpg" in view.target("brand").reason
    assert demo_sandbox.posted("brand") == []
    _photo(broken)  # the author fixes the image
    again = run_publish_job(instance, settings, post_ids=["fixme"])
    assert again.success  # a plain new run leaves the dead target dead
    assert _state(settings, "fixme").target("brand").state == TargetState.DEAD
    revived = retry(wire_settings(settings).store, "fixme")
    assert revived is not None and [row.subject for row in revived] == ["fixme/brand"]
    assert run_publish_job(instance, settings, post_ids=["fixme"]).success
    assert _state(settings, "fixme").state == PostState.PUBLISHED
    assert len(demo_sandbox.posted("brand")) == 1


def test_re_executing_the_failed_step_sends_the_dead_target_once(
    instance: DagsterInstance,
    settings: Settings,
    demo_sandbox: SandboxProcess,
    env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from social_pipelines_tests.pipeline.jobs_from_env import publish_job_from_env

    for name, value in {
        "DAGSTER_HOME": str(settings.dagster_home),
        "SOCIAL_SANDBOX_URL": settings.sandbox_url,
        "SOCIAL_DATABASE_URL": settings.state_store_url,
    }.items():
        monkeypatch.setenv(name, value)
    broken = env / "broken.jpg"
    broken.write_bytes(b"GIF89a and then nothing")
    _schedule(settings, "good", targets=("brand_news",))
    _schedule(settings, "bad", targets=("brand",), images=(PostImage(source=str(broken), alt="x"),))
    job = reconstructable(publish_job_from_env)
    with execute_job(job, instance=instance) as first:
        assert not first.success
        failed_run = first.run_id
    assert len(demo_sandbox.posted("brand_news")) == 1
    _photo(broken)
    options = ReexecutionOptions.from_failure(failed_run, instance)
    with execute_job(job, instance=instance, reexecution_options=options) as second:
        assert second.success
    assert _state(settings, "bad").state == PostState.PUBLISHED
    assert len(demo_sandbox.posted("brand")) == 1
    assert len(demo_sandbox.posted("brand_news")) == 1  # the good one was not sent again


def _an_hour_passes(settings: Settings) -> None:
    """Every time in the ledger an hour earlier: as if the quota's hour had gone by."""
    store = wire_settings(settings).store
    with store.engine.begin() as connection:
        for column in ("created_at", "updated_at", "sent_at", "not_before"):
            connection.execute(
                sa.text(
                    f"UPDATE deliveries SET {column} = datetime({column}, '-61 minutes')"
                    f" WHERE {column} IS NOT NULL"
                )
            )


def test_a_full_quota_defers_a_target_and_redelivery_sends_it(
    instance: DagsterInstance, make_settings: MakeSettings, demo_sandbox: SandboxProcess
) -> None:
    settings = make_settings(policies={"mastodon": {"quota_per_hour": 1}})
    _schedule(settings, "first", targets=("brand",), text="First of two")
    _schedule(settings, "second", targets=("brand",), text="Second of two")
    result = run_publish_job(instance, settings)
    assert result.success  # a deferral is no failure
    assert _state(settings, "first").state == PostState.PUBLISHED
    second = _state(settings, "second")
    assert second.state == PostState.PUBLISHING
    delivery = second.target("brand").delivery
    assert delivery is not None and delivery.error_kind == "quota_exhausted"
    assert delivery.not_before is not None
    assert len(demo_sandbox.posted("brand")) == 1
    _an_hour_passes(settings)
    redelivered = (
        build_definitions(settings)
        .get_job_def("redeliver_job")
        .execute_in_process(instance=instance)
    )
    assert redelivered.success
    assert _state(settings, "second").state == PostState.PUBLISHED
    assert [s["text"] for s in demo_sandbox.posted("brand")] == ["First of two", "Second of two"]
    record = wire_settings(settings).store.outbox.get("second")
    assert record is not None and record.status == "done"


def test_an_upload_still_processing_is_waited_for_before_the_post(
    instance: DagsterInstance, settings: Settings, demo_sandbox: SandboxProcess, env: Path
) -> None:
    demo_sandbox.set_media_processing(1.5)
    try:
        photo = _photo(env / "photo.jpg")
        _schedule(
            settings,
            "slow-media",
            targets=("brand",),
            images=(PostImage(source=str(photo), alt="a card"),),
        )
        assert run_publish_job(instance, settings).success
    finally:
        demo_sandbox.set_media_processing(0)
    (status,) = demo_sandbox.posted("brand")
    assert len(status["media_ids"]) == 1
    assert _state(settings, "slow-media").state == PostState.PUBLISHED
