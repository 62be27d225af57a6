"""Posts per second when many posts fall due at once: the daemon's sensor and the
`publish_job` runs it launches, against a bare httpx loop on the same sandbox, one run.

A fresh temporary `DAGSTER_HOME` (the embedded `dagster.yaml`: SQLite, the default run
launcher, the queued run coordinator with `max_concurrent_runs: 4`), a fresh SQLite state
store and a sandbox on 127.0.0.1 whose rate limit is switched off (`set_rate_limit(
enabled=False)`, checked). `dagster-daemon run -w workspace.yaml` as in production.

What is honest here: one Mastodon account may post 300 times per 5 minutes (the adapter's
`POLICY`, Mastodon's documented default), so one account can never reach 20 posts per
second for long; a brand posting this much spreads over accounts. The posts go to
`--accounts` sandbox accounts (default 10, created with `create_account`, round-robin,
100 posts each): every account stays inside Mastodon's documented limits, so the adapter's
policy runs as shipped, with no `SOCIAL_POLICIES` override (`--policies JSON` sets one, to
try). The quotas (3,600 per hour per account) are checked on every claim and not reached.

- pipeline: right after a tick of the sensor, N posts (default 1,000) are saved into the
  outbox (`wire_settings(settings).store.outbox.save`), all due at the same `at`,
  `--lead-in` seconds later (default 20: the next tick, 15 s later, takes them all a few
  seconds before their time, the same in every run, so runs compare); from that `at` to
  the last `created_at` on the sandbox. Every post must be created exactly once.
- bare: after the daemon is stopped, one keep-alive `httpx.Client` per account (fresh
  accounts, the same round-robin), POSTing `/api/v1/statuses` (JSON body,
  `Idempotency-Key`) N times in one loop.

Also shown: the runs (how many, queued to started, started to ended) and what the
pipeline's rate is from the first to the last creation. Last line: both rates and the ratio.
Goal: the pipeline at >= 20 posts per second.

    python bench/publish_throughput.py [--posts 1000] [--accounts 10] [--lead-in 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _daemon import (
    TICK,
    TICK_SKIPPED,
    Daemon,
    clean_env,
    make_home,
    run_records,
    sandbox_accounts_file,
)

from social_pipelines.models import Post
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.store.outbox import Origin
from social_pipelines.wiring import wire_settings

GOAL = 20.0


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def bare_loop(sandbox: SandboxProcess, names: list[str], posts: int) -> float:
    """Posts per second of a bare keep-alive httpx loop, round-robin over the accounts."""
    clients = [sandbox.client(name) for name in names]
    try:
        for client in clients:  # connect outside the timing
            client.get("/api/v1/accounts/verify_credentials").raise_for_status()
        started = time.perf_counter()
        for i in range(posts):
            response = clients[i % len(clients)].post(
                "/api/v1/statuses",
                json={"status": f"bare {i}"},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            response.raise_for_status()
            if not response.json()["id"]:
                raise RuntimeError("no id in the answer")
        return posts / (time.perf_counter() - started)
    finally:
        for client in clients:
            client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--lead-in", type=float, default=20.0, help="seconds until they are due")
    parser.add_argument("--policies", default="", help="SOCIAL_POLICIES JSON, to try one")
    args = parser.parse_args()
    names = [f"bench_{n:02d}" for n in range(args.accounts)]
    bare_names = [f"bare_{n:02d}" for n in range(args.accounts)]
    with (
        tempfile.TemporaryDirectory(prefix="bench-throughput-") as temporary,
        SandboxProcess(Path(temporary) / "sandbox.db") as sandbox,
    ):
        work = Path(temporary)
        limit = sandbox.set_rate_limit(enabled=False)
        if limit.get("enabled") is not False:
            raise RuntimeError(f"the sandbox's rate limit is still on: {limit}")
        for name in names + bare_names:
            sandbox.create_account(name)
        home = work / "dagster_home"
        tokens = sandbox_accounts_file(work / "accounts.toml", names)
        state_url = f"sqlite:///{work / 'state.db'}"
        extra = {"SOCIAL_POLICIES": args.policies} if args.policies else {}
        env = clean_env(
            DAGSTER_HOME=str(home),
            SOCIAL_SANDBOX_URL=sandbox.url,
            SOCIAL_DATABASE_URL=state_url,
            SOCIAL_ACCOUNTS_FILE=str(work / "accounts.toml"),
            **tokens,
            **extra,
        )
        make_home(home, env)
        settings = Settings(
            _env_file=None,
            dagster_home=home,
            sandbox_url=sandbox.url,
            database_url=state_url,
            accounts_file=work / "accounts.toml",
        )
        outbox = wire_settings(settings).store.outbox
        print(
            f"sandbox rate limit: {json.dumps(limit)}; {args.accounts} accounts, "
            f"policy overrides: {args.policies or 'none (the adapter POLICY as shipped)'}"
        )
        with Daemon(env, work / "daemon.log") as daemon:
            daemon.wait_for(TICK, 120)
            # Right after a tick, so the next one (an interval later) finds them all a few
            # seconds before their time, whatever the phase of this run's ticks.
            daemon.wait_for(TICK_SKIPPED, 60, times=daemon.log().count(TICK_SKIPPED) + 1)
            save_started = time.perf_counter()
            at = datetime.now(UTC) + timedelta(seconds=args.lead_in)
            wanted = set()
            for i in range(args.posts):
                post_id = f"tp-{i:04d}"
                account = names[i % len(names)]
                outbox.save(
                    Post(id=post_id, text=f"bench {post_id}", targets=(account,), at=at),
                    origin=Origin.CLI,
                )
                wanted.add(post_id)
            saved = time.perf_counter() - save_started
            if datetime.now(UTC) > at:
                at_note = f" (saving took {saved:.1f} s: the posts were due before the last was in)"
            else:
                at_note = ""
            print(
                f"scheduled {args.posts} posts due at {at:%H:%M:%S.%f} UTC "
                f"in {saved:.1f} s{at_note}"
            )
            deadline = time.monotonic() + 240
            created: dict[str, list[datetime]] = {}
            while time.monotonic() < deadline:
                created = {}
                for status in sandbox.posted():
                    if status["text"].startswith("bench "):
                        created.setdefault(status["text"][6:], []).append(
                            parse(status["created_at"])
                        )
                if len(created) >= args.posts:
                    time.sleep(3)
                    break
                time.sleep(1.0)
            created = {}
            for status in sandbox.posted():
                if status["text"].startswith("bench "):
                    created.setdefault(status["text"][6:], []).append(parse(status["created_at"]))
            records = run_records(home)
            tail = daemon.log()[-3000:]
        twice = {p: len(c) for p, c in created.items() if len(c) > 1}
        missing = sorted(wanted - set(created))
        runs = sorted(records, key=lambda r: r.create_timestamp)
        launches = [r.start_time - r.create_timestamp.timestamp() for r in runs if r.start_time]
        durations = [r.end_time - r.start_time for r in runs if r.start_time and r.end_time]
        statuses = sorted({str(r.dagster_run.status.value) for r in runs})
        print(
            f"runs: {len(runs)} ({', '.join(statuses)}); queued -> started median "
            f"{statistics.median(launches) if launches else float('nan'):.1f} s, max "
            f"{max(launches, default=float('nan')):.1f} s; started -> ended median "
            f"{statistics.median(durations) if durations else float('nan'):.1f} s"
        )
        if runs:
            first_queued = min(r.create_timestamp for r in runs).astimezone(UTC)
            print(
                f"first run queued {(first_queued - at).total_seconds():+.1f} s from the due time"
            )
        if twice or missing:
            print(
                f"FAILED: created {len(created)}/{args.posts}; more than once: "
                f"{json.dumps(twice)[:500]}; missing {len(missing)}: {missing[:20]}",
                file=sys.stderr,
            )
            print(tail, file=sys.stderr)
            return 1
        times = sorted(min(c) for c in created.values())
        span = (times[-1] - at).total_seconds()
        inner = (times[-1] - times[0]).total_seconds()
        pipeline = args.posts / span
        print(
            f"pipeline: {args.posts} posts created exactly once; due {at:%H:%M:%S.%f}, first "
            f"created {(times[0] - at).total_seconds():+.2f} s, last {span:+.2f} s: "
            f"{pipeline:.1f} posts/s from due to last sent ({args.posts / inner:.1f} posts/s "
            f"first to last created)"
        )
        bare = bare_loop(sandbox, bare_names, args.posts)
        print(f"bare httpx: {bare:.1f} posts/s ({args.posts} creates, {args.accounts} accounts)")
        print(
            f"pipeline {pipeline:.1f} posts/s, bare httpx {bare:.1f} posts/s, ratio "
            f"pipeline/bare {pipeline / bare:.3f} (goal pipeline >= {GOAL:.0f} posts/s)"
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
