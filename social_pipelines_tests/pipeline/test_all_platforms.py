"""Both pipelines on every platform: a brand with a Mastodon account (the real sandbox), a
Bluesky account and an X account (the stateful fakes of `social_pipelines_tests/fakes`,
on platforms.md §1 and §2), configured from the environment as a deployment is, X
connected by `accounts connect`'s own flow and Bluesky logging in by itself.

`reply_job` answers each platform's posts once (X reads the account's mentions by default),
`publish_job` sends one post with an image to all three, each rendering to its platform's
spec, and a second run of either sends nothing. A create whose answer is lost after the
post was made (Bluesky's 500, X's read timeout followed by a lagging timeline and X's 403
"duplicate content") is reconciled: one post, never two.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, UrlMetadataValue, instance_for_test

from social_pipelines.cli import main
from social_pipelines.models import PostState
from social_pipelines.publishing.states import post_view
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.fakes.bluesky import POST
from social_pipelines_tests.pipeline import platforms_world as pw
from social_pipelines_tests.pipeline.helpers import reports

ALT = "a launch card, blue on red"
TEXT = "Lost & found: an answer lost on the way"
LINK = "https://example.com/launch?from=x&to=bsky"


def _schedule(post_id: str, text: str, targets: str, *extra: str) -> None:
    """`social-pipelines schedule`, as a person would (the settings from the environment)."""
    command = ["schedule", "--to", targets, "--at", "now", "--id", post_id, "--text", text]
    assert main([*command, *extra]) == 0


def _step_urls(result: ExecuteInProcessResult, prefix: str) -> dict[str, set[str]]:
    """The URL metadata of the steps whose key starts with `prefix`, per step."""
    urls: dict[str, set[str]] = {}
    for event in result.all_events:
        if event.event_type_value != "STEP_OUTPUT" or not (event.step_key or "").startswith(prefix):
            continue
        metadata = event.event_specific_data.metadata  # type: ignore[union-attr]
        urls[event.step_key or ""] = {
            value.url for value in metadata.values() if isinstance(value, UrlMetadataValue)
        }
    return urls


def _bluesky_creates(world: pw.World) -> list:
    did = world.bluesky.actor(pw.BRAND_BSKY).did
    return [c for c in world.bluesky.creates if c.did == did and c.collection == POST]


def _x_creates(world: pw.World) -> list:
    user = world.x.user(pw.BRAND_X)
    assert user is not None
    return [c for c in world.x.creates if c.user_id == user.id]


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    """A Dagster instance of its own (the package's `instance` seeds the demo posts too,
    which the world replaces at once)."""
    with instance_for_test() as test_instance:
        yield test_instance


def test_both_pipelines_reach_every_platform_once(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pw.world(monkeypatch, tmp_path, demo_sandbox) as world:
        first = world.reply(instance)
        by_campaign = reports(first)
        assert {name: r.new for name, r in by_campaign.items()} == {
            "mastodon_dagster": 2,
            "bluesky_dagster": 2,
            "x_dagster": 2,
        }
        # Mastodon: one reply to each post worth answering.
        statuses = demo_sandbox.posted("brand")
        assert sorted(s["in_reply_to_id"] for s in statuses) == sorted(world.seeded["mastodon"])
        # Bluesky: one record each, a reply whose parent (and root) is the post answered.
        bluesky = _bluesky_creates(world)
        assert [c.status for c in bluesky] == [200, 200]
        replies = [
            r for r in world.bluesky.posts_of(pw.BRAND_BSKY) if r.rkey in {c.rkey for c in bluesky}
        ]
        parents = sorted(r.value["reply"]["parent"]["uri"] for r in replies)
        assert parents == sorted(world.seeded["bluesky"])
        assert all(r.value["reply"]["root"] == r.value["reply"]["parent"] for r in replies)
        # X: read from the mentions (its default source), one 201 per post answered.
        x_calls = {c.endpoint for c in world.x.calls}
        assert "mentions" in x_calls and "search" not in x_calls
        x_created = _x_creates(world)
        assert [c.status for c in x_created] == [201, 201]
        assert sorted(c.reply_to or "" for c in x_created) == sorted(world.seeded["x"])
        # Every reply's URL is in the summary's metadata.
        urls = _step_urls(first, "summarize")["summarize"]
        expected = {reply.url for r in by_campaign.values() for reply in r.replies}
        assert len(expected) == 6 and urls == expected
        assert len([url for url in urls if url.startswith("https://bsky.app/profile/")]) == 2
        assert len([url for url in urls if url.startswith("https://x.com/")]) == 2

        second = reports(world.reply(instance))
        assert {name: (r.new, r.already_answered) for name, r in second.items()} == {
            "mastodon_dagster": (0, 2),
            "bluesky_dagster": (0, 2),
            "x_dagster": (0, 2),
        }
        assert len(demo_sandbox.posted("brand")) == 2
        assert len(_bluesky_creates(world)) == 2 and len(_x_creates(world)) == 2

        # Meanwhile both platforms expired the access tokens (the clients still think them
        # valid): X answers 401, Bluesky 400 ExpiredToken; each session refreshes once.
        world.x.expire_access_tokens()
        world.bluesky.expire_access_tokens()
        refreshes = (world.x.refreshes, world.bluesky.refreshes)
        # One post with an image to all three accounts.
        photo = pw.photo(tmp_path / "launch.jpg")
        assert photo.stat().st_size > 1_000_000  # too big for Bluesky as it is
        _schedule(
            "launch", "Launch day!", "brand,brand_bsky,brand_x", "--image", str(photo), "--alt", ALT
        )
        published = world.publish(instance)
        view = post_view(*_record_and_deliveries(world, "launch"))
        assert view.state == PostState.PUBLISHED
        assert (world.x.refreshes, world.bluesky.refreshes) == (refreshes[0] + 1, refreshes[1] + 1)
        assert world.bluesky.logins == 1  # the stored session was refreshed, never a new login
        # Mastodon: the status with its image and description.
        [status] = [s for s in demo_sandbox.posted("brand") if s["in_reply_to_id"] is None]
        with demo_sandbox.client("brand") as client:
            shown = client.get(f"/api/v1/statuses/{status['id']}").json()
        [attachment] = shown["media_attachments"]
        assert attachment["description"] == ALT
        # Bluesky: one record, its image a blob of at most 1,000,000 bytes with its pixel
        # size as aspectRatio and the alt text.
        [bluesky_create] = _bluesky_creates(world)[2:]
        assert bluesky_create.status == 200
        [record] = [
            r for r in world.bluesky.posts_of(pw.BRAND_BSKY) if r.rkey == bluesky_create.rkey
        ]
        assert record.value["text"] == "Launch day!" and "reply" not in record.value
        [image] = record.value["embed"]["images"]
        blob = world.bluesky.blob(record.did, image["image"]["ref"]["$link"])
        assert blob.size <= 1_000_000 and blob.mime_type in ("image/jpeg", "image/png")
        assert image["alt"] == ALT
        assert image["aspectRatio"] == {"width": blob.width, "height": blob.height}
        assert abs(blob.width / blob.height - 1.5) < 0.01  # the photo's shape, kept
        # X: one 201 with the upload, whose alt text went by /2/media/metadata.
        [x_create] = _x_creates(world)[2:]
        assert x_create.status == 201
        tweet = world.x.tweets[x_create.created or ""]
        [media_key] = tweet.media_keys
        [upload] = [m for m in world.x.media.values() if m.key == media_key]
        assert upload.alt_text == ALT and upload.size <= 5 * 1024 * 1024
        assert any(c.endpoint == "media_metadata" and c.status == 200 for c in world.x.calls)
        # Each target's URL is in its step's metadata, and it is the post's.
        step_urls = _step_urls(published, "publish_")
        assert set(step_urls) == {
            "publish_mastodon[brand]",
            "publish_bluesky[brand_bsky]",
            "publish_x[brand_x]",
        }
        assert {u for urls in step_urls.values() for u in urls} == {t.url for t in view.targets}
        assert view.target("brand").url == status["url"]
        assert view.target("brand_bsky").url.endswith(f"/post/{record.rkey}")
        assert view.target("brand_x").url.endswith(f"/status/{tweet.id}")

        again = world.publish(instance, post_ids=["launch"])
        assert again.success
        assert len(demo_sandbox.posted("brand")) == 3
        assert len(_bluesky_creates(world)) == 3 and len(_x_creates(world)) == 3


def _record_and_deliveries(world: pw.World, post_id: str) -> tuple:
    outbox = world.wiring.store.outbox
    record = outbox.get(post_id)
    assert record is not None
    return record, outbox.deliveries([record])[post_id], outbox.clock()


def test_a_create_whose_answer_was_lost_is_reconciled_never_sent_twice(
    demo_sandbox: SandboxProcess,
    instance: DagsterInstance,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pw.world(monkeypatch, tmp_path, demo_sandbox) as world:
        # A link (X serves it as t.co) and an ampersand (X serves it as &amp;): what X's
        # timeline shows is not what was sent, and reconciliation must see through it.
        _schedule("lost", TEXT, "brand_bsky,brand_x", "--link", LINK)
        # Bluesky makes the record, then answers 500 (§2.5: what the reference PDS answers
        # for a key that exists, too). X makes the post and the answer never arrives; its
        # timeline shows the post one read late, so the first look misses it and the
        # second create is X's 403 "duplicate content".
        world.bluesky.lose_create_answers.append(500)
        world.x.lose_create_answers.append(httpx.ReadTimeout)
        world.x.timeline_lag = 1
        result = world.publish(instance)
        assert result.success
        view = post_view(*_record_and_deliveries(world, "lost"))
        assert view.state == PostState.PUBLISHED

        records = [
            r
            for r in world.bluesky.posts_of(pw.BRAND_BSKY)
            if r.value["text"] == f"{TEXT}\n\n{LINK}"
        ]
        assert len(records) == 1
        attempts = _bluesky_creates(world)
        assert attempts[0].status == 500 and attempts[0].created
        # Any second create used the same record key, and made nothing (a collision).
        assert {c.rkey for c in attempts} == {records[0].rkey}
        assert not any(c.created for c in attempts[1:])
        assert view.target("brand_bsky").url.endswith(f"/post/{records[0].rkey}")
        # §2.4: the link is a facet over its UTF-8 bytes (Bluesky links nothing by itself).
        [facet] = records[0].value["facets"]
        text = records[0].value["text"].encode("utf-8")
        assert text[facet["index"]["byteStart"] : facet["index"]["byteEnd"]] == LINK.encode()
        assert facet["features"] == [{"$type": "app.bsky.richtext.facet#link", "uri": LINK}]

        tweets = [t for t in world.x.posts_of(pw.BRAND_X) if t.written == f"{TEXT}\n\n{LINK}"]
        assert len(tweets) == 1
        assert [c.status for c in _x_creates(world)] == [0, 403]  # lost, then the duplicate
        assert view.target("brand_x").url.endswith(f"/status/{tweets[0].id}")
        outcomes = {
            event.step_key: event.event_specific_data.metadata  # type: ignore[union-attr]
            for event in result.all_events
            if event.event_type_value == "STEP_OUTPUT"
            and (event.step_key or "").startswith("publish_")
        }
        assert outcomes["publish_x[brand_x]"]["targets_reconciled"].value == 1

        assert world.publish(instance, post_ids=["lost"]).success
        assert len(_bluesky_creates(world)) == len(attempts)
        assert [c.status for c in _x_creates(world)] == [0, 403]
