"""What the chaos tests run in processes of their own, so that they can be SIGKILLed.

    python -m social_pipelines_tests.chaos.driver job reply_job --partition KEY --run-id ID
        [--campaign NAME ...]
    python -m social_pipelines_tests.chaos.driver job redeliver_job --run-id ID
    python -m social_pipelines_tests.chaos.driver job publish_job --run-id ID
        [--post-id ID ...]
    python -m social_pipelines_tests.chaos.driver post --account NAME --subjects FILE
    python -m social_pipelines_tests.chaos.driver breaker --account NAME

Everything is configured by the environment, exactly as a run worker is: `DAGSTER_HOME`
(a persistent instance, `DagsterInstance.get()`), `SOCIAL_DATABASE_URL`,
`SOCIAL_ACCOUNTS_FILE`, `SOCIAL_CAMPAIGNS_FILE`, `SOCIAL_SANDBOX_URL`, `SOCIAL_HTTP_TIMEOUT`,
`SOCIAL_POLICIES`.

`job` executes a job of the code location in this process on the persistent instance (a
killed run stays STARTED there, as it would under a run launcher) and prints one JSON line
`{"event": "done", "success": ...}` when the run ends. `publish_job` gets the posts named
by `--post-id` as its `plan_publishes` config (none: every due post).

`post` is a worker for the rate-limit test: it replies to a list of posts through
`PlatformsResource` and the `Deliverer` once it reads `go` on stdin (see `post_worker`).

`breaker` is a worker for the circuit-breaker test: it reads one JSON command per line on
stdin, `{"at": EPOCH, "calls": N, "interval": S, "until": EPOCH}`, sleeps until `at`, makes
up to `calls` posts through the guarded platform (the one door: breaker, limiter, retries)
`interval` seconds apart while the clock is before `until`, and answers one JSON line with
each call's outcome. Nothing it does before a command reaches the platform.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any


def _emit(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def run_job(
    job_name: str,
    partition: str | None,
    run_id: str | None,
    campaigns: list[str],
    post_ids: list[str] | None = None,
) -> int:
    from dagster import DagsterInstance

    from social_pipelines.definitions import defs

    job = defs.get_job_def(job_name)
    run_config: dict[str, Any] = {}
    if campaigns:
        run_config = {"ops": {"plan_campaigns": {"config": {"campaigns": campaigns}}}}
    if job_name == "redeliver_job":
        run_config = {"ops": {"redeliver_due": {"config": {"limit": 5000}}}}
    if job_name == "publish_job":
        # No post ids: every due post, as the sensor's runs do.
        run_config = {"ops": {"plan_publishes": {"config": {"post_ids": post_ids or []}}}}
    instance = DagsterInstance.get()
    _emit({"event": "start", "pid": os.getpid(), "run_id": run_id})
    try:
        result = job.execute_in_process(
            instance=instance,
            partition_key=partition,
            run_id=run_id,
            run_config=run_config,
            raise_on_error=False,
        )
    finally:
        instance.dispose()
    _emit({"event": "done", "success": result.success, "run_id": result.run_id})
    return 0 if result.success else 1


def _guarded_platform(account_name: str) -> Any:
    """The account's platform exactly as `PlatformsResource.connect` builds it: through
    the one wiring function, from this process's settings."""
    from social_pipelines.settings import load_settings
    from social_pipelines.wiring import wire_settings

    wiring = wire_settings(load_settings())
    return wiring.connect(wiring.accounts().get(account_name))


def breaker_worker(account_name: str) -> int:
    from social_pipelines.errors import CircuitOpen, SocialError
    from social_pipelines.models import CreatePost

    platform = _guarded_platform(account_name)
    _emit({"event": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        delay = command.get("at", 0) - time.time()
        if delay > 0:
            time.sleep(delay)
        until = command.get("until") or float("inf")
        calls = []
        for index in range(command.get("calls", 1)):
            if index and command.get("interval"):
                time.sleep(command["interval"])
            started = time.time()
            if started >= until:
                break
            key = f"breaker-{os.getpid()}-{uuid.uuid4().hex[:12]}"
            try:
                published = platform.create_post(
                    CreatePost(text=f"breaker probe {key}"), idempotency_key=key
                )
            except CircuitOpen as error:
                outcome, detail = "circuit_open", str(error)
            except SocialError as error:
                outcome, detail = error.kind, str(error)
            else:
                outcome, detail = "ok", published.remote_id
            calls.append(
                {"outcome": outcome, "detail": detail, "started": started, "ended": time.time()}
            )
        _emit({"event": "calls", "pid": os.getpid(), "calls": calls})
    platform.close()
    return 0


def post_worker(account_name: str, subjects_file: str, order_seed: int) -> int:
    """Reply to the posts listed in `subjects_file` (JSON `[{"id", "author"}]`) in a
    shuffled order, through the wiring `PlatformsResource` runs on and the `Deliverer`, as
    `post_replies` does.

    The account's identity and the instance's limits are fetched before "ready" (as the
    search and write steps of a reply run do before posting); posting starts on a `go`
    line on stdin, so that every worker posts at once.
    """
    import random
    from collections import Counter

    from social_pipelines.models import DeliveryKind, Draft, delivery_id
    from social_pipelines.settings import load_settings
    from social_pipelines.wiring import wire_settings

    platforms = wire_settings(load_settings())
    account = platforms.accounts().get(account_name)
    platform = platforms.connect(account)
    identity = platform.whoami()
    platform.content_rules()
    with open(subjects_file, encoding="utf-8") as handle:
        posts = json.load(handle)
    random.Random(order_seed).shuffle(posts)
    drafts = [
        Draft(
            delivery_id=delivery_id(
                identity.platform, identity.stable_key, DeliveryKind.REPLY, post["id"]
            ),
            campaign="concurrency",
            account=account_name,
            platform=identity.platform,
            account_key=identity.stable_key,
            kind=DeliveryKind.REPLY,
            subject=post["id"],
            text=f"@{post['author']} thanks, noted.",
        )
        for post in posts
    ]
    deliverer = platforms.deliverer(account, platform, run_id=f"post-worker-{os.getpid()}")
    _emit({"event": "ready", "pid": os.getpid()})
    sys.stdin.readline()
    started = time.time()
    outcomes: Counter[str] = Counter()
    for draft in drafts:
        outcomes[str(deliverer.deliver(draft).outcome)] += 1
    platform.close()
    _emit(
        {
            "event": "done",
            "pid": os.getpid(),
            "outcomes": dict(outcomes),
            "started": started,
            "ended": time.time(),
        }
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m social_pipelines_tests.chaos.driver")
    commands = parser.add_subparsers(dest="command", required=True)
    job = commands.add_parser("job", help="execute a job in this process")
    job.add_argument(
        "job_name", choices=["reply_job", "redeliver_job", "publish_job", "token_refresh_job"]
    )
    job.add_argument("--partition")
    job.add_argument("--run-id")
    job.add_argument("--campaign", action="append", default=[], help="only this campaign")
    job.add_argument("--post-id", action="append", default=[], help="publish_job: only this post")
    breaker = commands.add_parser("breaker", help="a worker for the breaker test")
    breaker.add_argument("--account", required=True)
    post = commands.add_parser("post", help="a posting worker for the rate-limit test")
    post.add_argument("--account", required=True)
    post.add_argument("--subjects", required=True)
    post.add_argument("--order-seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "job":
        return run_job(args.job_name, args.partition, args.run_id, args.campaign, args.post_id)
    if args.command == "post":
        return post_worker(args.account, args.subjects, args.order_seed)
    return breaker_worker(args.account)


if __name__ == "__main__":
    sys.exit(main())
