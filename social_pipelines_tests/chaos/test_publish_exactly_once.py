"""Every target of every scheduled post exactly once, with about 30 % faults, a server that
ignores `Idempotency-Key`, and publish runs SIGKILLed mid-posting.

Publishes have no reply target to be found by, and most platforms take no idempotency key:
the sandbox here ignores the key (as Takahē does), so reconciliation by content among the
account's own posts is all that keeps a post single. The posts are built to make that hard:
several posts with the same text to the same account (still separate posts: each shows as
many times as it was scheduled), posts to two accounts (`brand` and `brand_news`), posts
with one to four images (an upload before each create: a retried attempt reuses the staged
media and never attaches an upload twice), one with a link.

`publish_job` runs in driver processes on a persistent Dagster instance; some runs are
SIGKILLed after the sandbox created k new statuses (or at a random moment). A killed run is
marked failed as an operator would and its claims lapse after the lease; then
`publish_job` runs again for the posts not done and `redeliver_job` finishes what is left
(failed, unknown), as the reply chaos does.

The verdict, from the sandbox and the ledger (`compute_publish_verdict`): every target is
`sent` with exactly one status of its own (matched by the recorded remote id; statuses
counted per account and text against the deliveries of that text) or `dead` with its
reason; no status without a `sent` row; no two deliveries recorded with one status; every
sent status with the post's image count attached; nothing left planned, sending, failed or
unknown; every post done.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from social_pipelines.models import DeliveryState, Post, PostImage, publish_subject
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import Origin, OutboxStatus
from social_pipelines_tests.chaos.harness import (
    Account,
    CampaignSpec,
    KillTrigger,
    PublishTarget,
    RunRecord,
    World,
    compute_publish_verdict,
    long_mode,
    make_world,
    print_summary,
    recover,
    run_driver_job,
    run_statuses,
)

SEED = 20260219
# About 30 % of requests fail, every kind the sandbox knows, with the faults after the
# status is made (a reset or a timeout once it exists) weighted up: those are the ones only
# reconciliation can settle. Uploads get them too.
FAULTS = {
    "error_500": 0.03,
    "error_502": 0.03,
    "error_503": 0.04,
    "reset_before": 0.03,
    "reset_after": 0.07,
    "timeout_before": 0.03,
    "timeout_after": 0.07,
    "latency": 0.005,
    "seed": SEED,
}
# As the reply chaos: fast retries, a breaker that does not stall a run, no posting quota.
POLICY = {
    "breaker_fail_max": 40,
    "breaker_reset_seconds": 1.0,
    "retry_attempts": 4,
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 8.0,
    "max_wait_seconds": 5.0,
    "reconcile_settle_seconds": 0.3,
    "op_retries": 3,
    "op_retry_delay": 0.2,
    "quota_per_hour": None,
    "quota_per_day": None,
    "buckets": {"account": [{"limit": 5000, "seconds": 10}]},
    "endpoints": {"*": ["account"]},
}
ACCOUNTS = [Account("brand", "brand"), Account("brand_news", "brand_news")]


@dataclass(frozen=True)
class Scale:
    unique_posts: int  # each its own text
    same_text: tuple[int, ...]  # groups of posts sharing one text (to both accounts)
    http_timeout: float
    timeout_delay: float
    kills: int  # publish runs SIGKILLed after they posted something
    most_statuses: int  # a kill fires after 1..most new statuses ...
    seconds: tuple[float, float]  # ... or, one time in four, after this much run time
    max_extra_rounds: int


SCALE_SHORT = Scale(
    unique_posts=6,
    same_text=(3, 2),
    http_timeout=0.5,
    timeout_delay=0.8,
    kills=2,
    most_statuses=6,
    seconds=(3.0, 8.0),
    max_extra_rounds=12,
)
SCALE_LONG = Scale(
    unique_posts=96,
    same_text=(5, 4, 4, 3, 3, 2, 2),
    http_timeout=1.0,
    timeout_delay=1.5,
    kills=8,
    most_statuses=20,
    seconds=(4.0, 40.0),
    max_extra_rounds=25,
)


def _photos(folder: Path, count: int) -> list[Path]:
    """Small JPEGs, each its own colours (a rendering cached by content stays its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = Image.new("RGB", (96, 64), (40 * index % 256, 90, 200 - 30 * index % 200))
        image.paste((250, 250, 250), (0, 0, 16 + index, 16))
        path = folder / f"photo-{index}.jpg"
        image.save(path, quality=85)
        paths.append(path)
    return paths


def _design(scale: Scale, photos: list[Path], rng: random.Random) -> list[Post]:
    """Posts to one or both accounts, a share of them with images; the same-text groups go
    to both accounts, some of their posts with images and some without."""
    at = datetime.now(UTC) - timedelta(seconds=2)
    both, only_brand, only_news = ("brand", "brand_news"), ("brand",), ("brand_news",)
    posts: list[Post] = []

    def images(count: int) -> tuple[PostImage, ...]:
        chosen = rng.sample(photos, count)
        return tuple(PostImage(source=str(p), alt=f"photo {p.stem}") for p in chosen)

    for index in range(scale.unique_posts):
        targets = (both, only_brand, only_news)[index % 3]
        count = (0, 1, 0, 2, 1, 4)[index % 6]
        posts.append(
            Post(
                id=f"u{index:03d}",
                text=f"Release note {index}: the pipeline runs {index + 2} times faster now.",
                link="https://example.com/notes" if index == 2 else None,
                images=images(count),
                targets=targets,
                at=at,
            )
        )
    for group, size in enumerate(scale.same_text):
        for index in range(size):
            posts.append(
                Post(
                    id=f"s{group}-{index}",
                    text=f"Same words, separate posts: reminder {group} about the meetup.",
                    images=images(index % 3),
                    targets=both,
                    at=at,
                )
            )
    return posts


def _open_posts(world: World, post_ids: list[str]) -> list[str]:
    found = world.store().outbox.get_many(post_ids)
    return [pid for pid in post_ids if pid in found and found[pid].status == OutboxStatus.OPEN]


def _unplanned(world: World, posts: list[Post]) -> int:
    ledger = world.store().ledger
    planned = {record.subject for record in ledger.list(limit=1_000_000)}
    return sum(
        publish_subject(post.id, target) not in planned for post in posts for target in post.targets
    )


UNSETTLED = (
    DeliveryState.PLANNED,
    DeliveryState.SENDING,
    DeliveryState.FAILED,
    DeliveryState.UNKNOWN,
)


def _trigger(scale: Scale, rng: random.Random) -> KillTrigger:
    if rng.random() < 0.25:
        return KillTrigger(after_seconds=rng.uniform(*scale.seconds))
    return KillTrigger(after_statuses=rng.randint(1, scale.most_statuses))


@pytest.mark.chaos
def test_every_publish_exactly_once_under_faults_kills_and_ignored_keys(tmp_path: Path) -> None:
    began = time.monotonic()
    rng = random.Random(SEED)
    scale = SCALE_LONG if long_mode() else SCALE_SHORT
    photos = _photos(tmp_path / "photos", 6)
    with SandboxProcess(
        tmp_path / "sandbox.db", rate_limit=5000, rate_window=10, seed=SEED
    ) as sandbox:
        # No campaign runs here; the campaigns file only has to be valid.
        campaigns = [CampaignSpec("unused", "brand", "zzunused")]
        world = make_world(
            tmp_path, sandbox, ACCOUNTS, campaigns, http_timeout=scale.http_timeout, policy=POLICY
        )
        sandbox.set_idempotency(honoured=False)
        posts = _design(scale, photos, rng)
        outbox = world.store().outbox
        for post in posts:
            outbox.save(post, origin=Origin.CLI)
        post_ids = [post.id for post in posts]
        targets = [
            PublishTarget(post.id, target, post.body_for(target), len(post.images))
            for post in posts
            for target in post.targets
        ]
        sandbox.set_faults(**FAULTS, timeout_delay=scale.timeout_delay)
        runs: list[RunRecord] = []

        def run(job: str, kill: KillTrigger | None = None) -> RunRecord:
            chosen = _open_posts(world, post_ids) if job == "publish_job" else []
            record = run_driver_job(world, job, post_ids=chosen, kill=kill)
            runs.append(record)
            recover(world, [record])
            ending = f"KILLED {record.kill_reason}" if record.killed else f"rc={record.returncode}"
            what = f"{len(chosen)} posts" if job == "publish_job" else ""
            print(
                f"run {len(runs):2d} {job:<13} {what:<9} {ending}, "
                f"{record.statuses_in_run} new statuses, {record.seconds:.1f} s",
                flush=True,
            )
            return record

        # Kill publish runs at random points until enough were killed mid-posting (a
        # trigger that fires before posting starts, or never, does not count).
        for _ in range(3 * scale.kills + 3):
            if sum(record.mid_posting for record in runs) >= scale.kills:
                break
            if not _open_posts(world, post_ids):
                break
            run("publish_job", _trigger(scale, rng))

        # Converge: redeliver what the killed runs left, publish the posts not done while
        # some target was never planned, then redeliver what is left.
        ledger = world.store().ledger
        if ledger.due(limit=1):
            run("redeliver_job")
        for _ in range(scale.max_extra_rounds):
            pending = ledger.list(states=UNSETTLED, limit=1_000_000)
            still_open = _open_posts(world, post_ids)
            if not pending and not still_open:
                break
            if _unplanned(world, posts) or not pending:
                run("publish_job")
                continue
            if not ledger.due(limit=1):
                upcoming = ledger.next_due_at()
                wait = (upcoming - datetime.now(UTC)).total_seconds() if upcoming else 0.5
                time.sleep(min(max(wait, 0.0) + 0.1, 5.0))
            run("redeliver_job")

        sandbox.clear_faults()
        verdict = compute_publish_verdict(world, targets)
        statuses = run_statuses(world)
        stats = sandbox.stats()
        kills = [record for record in runs if record.killed]
        same = sum(scale.same_text)
        print_summary(
            "chaos: publishes exactly once under faults and kills, keys IGNORED by the server"
            + (" (long)" if long_mode() else ""),
            verdict,
            {
                "posts/targets": f"{len(posts)}/{len(targets)} on {len(ACCOUNTS)} accounts",
                "same text": f"{same} posts in {len(scale.same_text)} groups, to both accounts",
                "with images": f"{sum(bool(p.images) for p in posts)} posts, "
                f"{sum(t.images for t in targets)} attachments expected, "
                f"{stats['media_uploaded']} uploads made",
                "runs": f"{len(runs)} (Dagster run statuses: {dict(statuses)})",
                "kills": f"{len(kills)} ({sum(r.mid_posting for r in kills)} mid-posting)",
                "http timeout": f"{scale.http_timeout} s (injected delays {scale.timeout_delay} s)",
                "wall time": f"{time.monotonic() - began:.1f} s",
                "driver logs": str(world.logs),
            },
        )

    assert verdict.clean, verdict.problems()
    assert verdict.deliveries == len(targets)
    assert verdict.violations == 0
    assert sum(verdict.faults.values()) > 0
    assert verdict.faults["timeout_after"] > 0 and verdict.faults["reset_after"] > 0
    assert "STARTED" not in statuses, statuses
    assert sum(record.mid_posting for record in kills) >= scale.kills
