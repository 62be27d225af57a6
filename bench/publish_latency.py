"""How late is a scheduled post? Seconds from each post's `at` to its creation on the
platform, through a real Dagster daemon, one run.

A fresh temporary `DAGSTER_HOME` (the embedded `dagster.yaml`: SQLite storage, the default
run launcher, the queued run coordinator with its limits, storage initialised once as
`make home` does), a fresh SQLite state store beside it and a sandbox on 127.0.0.1 (its
rate limit as shipped). `dagster-daemon run -w workspace.yaml` runs `due_posts_sensor`
exactly as in production (interval, lead, runs launched through the run queue, each run
its own `dagster api execute_run` process). Once the sensor has ticked, N posts (default
50, for one sandbox account `brand`; `--accounts K` spreads them round-robin over K) are
saved into the outbox through
`wire_settings(settings).store.outbox.save`, falling due evenly over one minute from about
90 s after the daemon came up, so the first posts meet warm ticks.

The judge is the sandbox: each post's `created_at` there minus its `at` (same machine,
same clock). Every post must be created exactly once (fails loudly otherwise). Also shown:
per run, when it was queued and when its process started against the first post it
carried (why a post was late, when one was). Last line: p50, p95, max of the delay.
Goal: p95 <= 5 s.

    python bench/publish_latency.py [--posts 50] [--spread 60] [--warmup 90]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _daemon import TICK, Daemon, clean_env, make_home, run_records, sandbox_accounts_file

from social_pipelines.models import Post
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings
from social_pipelines.store.outbox import Origin
from social_pipelines.wiring import wire_settings

GOAL_P95 = 5.0


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]  # nearest rank


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=50)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds the posts span")
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds from up to first")
    parser.add_argument(
        "--accounts", type=int, default=1, help="spread the posts round-robin over this many"
    )
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-latency-") as temporary,
        SandboxProcess(Path(temporary) / "sandbox.db") as sandbox,
    ):
        work = Path(temporary)
        home = work / "dagster_home"
        names = ["brand", *(f"brand_{n}" for n in range(2, args.accounts + 1))]
        for name in names[1:]:
            sandbox.create_account(name)
        tokens = sandbox_accounts_file(work / "accounts.toml", names)
        state_url = f"sqlite:///{work / 'state.db'}"
        env = clean_env(
            DAGSTER_HOME=str(home),
            SOCIAL_SANDBOX_URL=sandbox.url,
            SOCIAL_DATABASE_URL=state_url,
            SOCIAL_ACCOUNTS_FILE=str(work / "accounts.toml"),
            **tokens,
        )
        make_home(home, env)
        settings = Settings(
            _env_file=None,
            dagster_home=home,
            sandbox_url=sandbox.url,
            database_url=state_url,
            accounts_file=work / "accounts.toml",
        )
        outbox = wire_settings(settings).store.outbox  # creates the state store's schema
        with Daemon(env, work / "daemon.log") as daemon:
            started = time.monotonic()
            daemon.wait_for(TICK, 120)
            up = datetime.now(UTC)
            print(
                f"daemon up: first due_posts_sensor tick "
                f"{time.monotonic() - started:.1f} s after start"
            )
            first = up + timedelta(seconds=args.warmup)
            step = args.spread / max(1, args.posts - 1)
            wanted: dict[str, datetime] = {}
            for i in range(args.posts):
                at = first + timedelta(seconds=i * step)
                post_id = f"latency-{i:03d}"
                outbox.save(
                    Post(
                        id=post_id, text=f"bench {post_id}", targets=(names[i % len(names)],), at=at
                    ),
                    origin=Origin.CLI,
                )
                wanted[post_id] = at
            print(
                f"scheduled {args.posts} posts for {', '.join(names)}, due {first:%H:%M:%S} .. "
                f"{max(wanted.values()):%H:%M:%S} UTC (one every {step:.2f} s)"
            )
            deadline = max(wanted.values()) + timedelta(seconds=90)
            created: dict[str, list[datetime]] = {}
            while datetime.now(UTC) < deadline:
                created = {}
                for status in sandbox.posted():
                    post_id = status["text"].removeprefix("bench ")
                    created.setdefault(post_id, []).append(parse(status["created_at"]))
                if len(created) >= args.posts and datetime.now(UTC) > max(wanted.values()):
                    time.sleep(5)  # let a second copy, if any, arrive
                    break
                time.sleep(1.0)
            final = {}
            for status in sandbox.posted():
                post_id = status["text"].removeprefix("bench ")
                final.setdefault(post_id, []).append(parse(status["created_at"]))
            created = final
            records = run_records(home)
        twice = {p: len(c) for p, c in created.items() if len(c) > 1}
        missing = sorted(set(wanted) - set(created))
        strange = sorted(set(created) - set(wanted))

        runs = []
        for record in sorted(records, key=lambda r: r.create_timestamp):
            config = record.dagster_run.run_config or {}
            ids = (
                config.get("ops", {})
                .get("plan_publishes", {})
                .get("config", {})
                .get("post_ids", [])
            )
            runs.append((record, ids))
        statuses = sorted({str(r.dagster_run.status.value) for r, _ in runs})
        print(f"runs: {len(runs)} (statuses: {', '.join(statuses)})")
        for record, ids in runs:
            first_at = min((wanted[i] for i in ids if i in wanted), default=None)
            start = datetime.fromtimestamp(record.start_time, UTC) if record.start_time else None
            queued = record.create_timestamp.astimezone(UTC)
            ahead = (first_at - start).total_seconds() if first_at and start else float("nan")
            launch = (start - queued).total_seconds() if start else float("nan")
            print(
                f"  run {record.dagster_run.run_id[:8]}: {len(ids):3d} posts, queued "
                f"{queued:%H:%M:%S}, process started {launch:5.1f} s later, "
                f"{ahead:6.1f} s before its first post's time"
            )
        delays = {
            p: (min(c) - wanted[p]).total_seconds() for p, c in created.items() if p in wanted
        }
        if delays:
            early = [p for p, d in delays.items() if d < 0]
            print(
                f"earliest delay {min(delays.values()):.3f} s; "
                f"created before their time: {len(early)}"
            )
            worst = sorted(delays.items(), key=lambda kv: kv[1], reverse=True)[:5]
            print("latest: " + ", ".join(f"{p} {d:.2f} s" for p, d in worst))
        if twice or missing or strange or len(delays) != args.posts:
            print(
                f"FAILED: created {len(created)}/{args.posts}; "
                f"more than once: {json.dumps(twice)}; missing: {missing}; unexpected: {strange}",
                file=sys.stderr,
            )
            print(daemon.log()[-3000:], file=sys.stderr)
            return 1
        values = list(delays.values())
        p50, p95 = statistics.median(values), percentile(values, 0.95)
        print(f"posts created exactly once: {len(values)}/{args.posts}")
        print(
            f"delay at -> created_at: p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s, "
            f"posts {len(values)} (goal p95 <= {GOAL_P95:.0f} s)"
        )
        return 0


if __name__ == "__main__":
    sys.exit(main())
