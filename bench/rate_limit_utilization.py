"""Several processes sharing one account: no 429s, and how much of the limit gets used.

One sandbox with a small fixed-window limit (default 30 requests per 3 s, windows aligned to
the Unix epoch like rack-attack's), and two client configurations: its account bucket set to
the same limit ("as the platform"), and Mastodon's default 300 per 300 s, ten times above it
("above the platform"), where only the budget the sandbox announces in its `X-RateLimit-*`
headers keeps the processes under the limit. For N in (2, 4): N spawned processes, each with
its own state store handle, `Connector` and `GuardedPlatform` on one shared state store and one
shared bucket file, send creates as fast as the stack lets them. They start half a window
before a boundary (a run starts at any time) and are measured over the whole windows that
follow. The sandbox says what it accepted (`/_sandbox/posted`, counted per server window
from the status ids) and how many 429s it answered (`/_sandbox/stats`).

utilization = creates accepted in the measured windows / (limit x windows)

    python bench/rate_limit_utilization.py [--windows 6] [--limit 30] [--window 3.0]
        [--procs 2 4] [--lead 0.5] [--configured as_platform above_platform]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import REPLY_TEXT, FullStack

from social_pipelines.errors import SocialError
from social_pipelines.models import CreatePost
from social_pipelines.sandbox.process import SandboxProcess

GOAL = 0.95
ID_SEQUENCE_BITS = 16  # sandbox ids: milliseconds since the epoch << 16 | sequence


CONFIGURATIONS = ("as_platform", "above_platform")


def overrides(limit: int, window: float, configured: str) -> dict[str, dict[str, Any]]:
    """The client's policy: the sandbox's limit on the one account bucket every call draws,
    or the shipped Mastodon default (300 per 5 minutes)."""
    if configured == "above_platform":
        return {}
    return {
        "mastodon": {
            "buckets": {"account": [{"limit": limit, "seconds": window}]},
            "endpoints": {"*": ["account"]},
        }
    }


@dataclass
class WorkerReport:
    """What one process saw from its side."""

    sent: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    call_seconds: list[float] = field(default_factory=list)
    overran: float = 0.0  # how long after the end its last call returned


def worker(
    url: str,
    state_dir: str,
    limit: int,
    window: float,
    configured: str,
    ready: Any,
    start_at: Any,
    results: Any,
) -> None:
    """One process: build its own stack, wait for the common start, send until the end."""
    stack = FullStack(Path(state_dir), url, overrides=overrides(limit, window, configured))
    report = WorkerReport()
    try:
        ready.put(True)
        begin, end = start_at.get()
        time.sleep(max(0.0, begin - time.time()))
        while time.time() < end:
            started = time.perf_counter()
            try:
                stack.platform.create_post(
                    CreatePost(text=REPLY_TEXT), idempotency_key=uuid.uuid4().hex
                )
                report.sent += 1
            except SocialError as error:
                report.errors[type(error).__name__] += 1
            report.call_seconds.append(time.perf_counter() - started)
        report.overran = max(0.0, time.time() - end)
    finally:
        stack.close()
        results.put(report)


def created_ms(posted: list[dict[str, Any]]) -> list[int]:
    """When the sandbox created each status (milliseconds, from its id), in order."""
    return sorted(int(status["id"]) >> ID_SEQUENCE_BITS for status in posted)


def server_windows(millis: list[int], window: float) -> Counter[int]:
    """Creates per sandbox window."""
    return Counter(math.floor(ms / 1000 / window) for ms in millis)


def reuse_lag_ms(millis: list[int], limit: int, window: float) -> list[float]:
    """How long after a full window each permit is used again: create i+limit - create i - W.

    The client's sliding window lets a permit go again only after window + margins + the
    time to notice and send; over a long run the share of the limit used tends to
    window / (window + lag) whatever the phase, which a few windows cannot show.
    """
    pairs = zip(millis, millis[limit:], strict=False)
    return [later - earlier - 1000 * window for earlier, later in pairs]


def run(
    sandbox: SandboxProcess,
    root: Path,
    procs: int,
    *,
    configured: str,
    limit: int,
    window: float,
    windows: int,
    lead: float,
) -> dict[str, Any]:
    """One measurement with `procs` processes on a fresh sandbox state and bucket file."""
    sandbox.reset()  # statuses, counters and windows gone; the start's rate limit restored
    state_dir = root / f"state-{configured}-{procs}"
    context = mp.get_context("spawn")
    ready, start_at, results = context.Queue(), context.Queue(), context.Queue()
    workers = [
        context.Process(
            target=worker,
            args=(sandbox.url, str(state_dir), limit, window, configured, ready, start_at, results),
        )
        for _ in range(procs)
    ]
    for process in workers:
        process.start()
    for _ in workers:
        ready.get(timeout=120)
    # Start `lead` windows before a boundary (mid-window by default: a run starts at any
    # time, not when a window opens); only the whole windows from that boundary on count.
    first = math.floor((time.time() + 0.5 + lead * window) / window) + 1
    begin, end = (first - lead) * window, (first + windows) * window
    for _ in workers:
        start_at.put((begin, end))
    reports: list[WorkerReport] = [results.get(timeout=end - time.time() + 120) for _ in workers]
    for process in workers:
        process.join(timeout=30)
    stats = sandbox.stats()
    millis = created_ms(sandbox.posted())
    per_window = server_windows(millis, window)
    lags = reuse_lag_ms([ms for ms in millis if ms >= 1000 * begin], limit, window)
    lag = statistics.fmean(lags) if lags else float("nan")
    measured = [per_window.get(first + index, 0) for index in range(windows)]
    errors: Counter[str] = Counter()
    for report in reports:
        errors.update(report.errors)
    calls = [seconds for report in reports for seconds in report.call_seconds]
    return {
        "configured": configured,
        "procs": procs,
        "accepted": sum(measured),
        "per_window": measured,
        "before": sum(n for w, n in per_window.items() if w < first),
        "after": sum(n for w, n in per_window.items() if w >= first + windows),
        "requests": stats["requests"],
        "violations": stats["violations"],
        "utilization": sum(measured) / (limit * windows),
        "per_process": [report.sent for report in reports],
        "errors": dict(errors),
        "call_median_ms": 1000 * statistics.median(calls) if calls else float("nan"),
        "lag_ms": lag,
        "lag_median_ms": statistics.median(lags) if lags else float("nan"),
        "lag_p90_ms": statistics.quantiles(lags, n=10)[-1] if len(lags) > 1 else float("nan"),
        "steady": window / (window + lag / 1000),
        "overran": max(report.overran for report in reports),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=6, help="windows measured (default 6)")
    parser.add_argument("--limit", type=int, default=30, help="requests per window (default 30)")
    parser.add_argument(
        "--window", type=float, default=3.0, help="window length in seconds (default 3.0)"
    )
    parser.add_argument(
        "--procs", type=int, nargs="+", default=[2, 4], help="process counts (default 2 4)"
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=0.5,
        help="start this many windows before the first measured one (default 0.5)",
    )
    parser.add_argument(
        "--configured",
        nargs="+",
        choices=CONFIGURATIONS,
        default=list(CONFIGURATIONS),
        help="client bucket as the platform's limit, or the shipped default above it",
    )
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-utilization-") as tmp:
        root = Path(tmp)
        with SandboxProcess(
            root / "sandbox.db", rate_limit=args.limit, rate_window=args.window
        ) as sandbox:
            print(
                f"sandbox limit {args.limit} per {args.window:g} s (fixed windows); client "
                "bucket the same (as_platform) or the default 300 per 300 s (above_platform); "
                f"{args.windows} whole windows measured per run, processes start "
                f"{args.lead:g} window before"
            )
            cases = [(c, p) for c in args.configured for p in args.procs]
            for configured, procs in cases:
                result = run(
                    sandbox,
                    root,
                    procs,
                    configured=configured,
                    limit=args.limit,
                    window=args.window,
                    windows=args.windows,
                    lead=args.lead,
                )
                results.append(result)
                print(
                    f"{configured}, {procs} procs: {result['accepted']} accepted in "
                    f"{args.windows} windows "
                    f"(per window {result['per_window']}; lead-in {result['before']}, "
                    f"after the end {result['after']}), "
                    f"requests {result['requests']}, violations {result['violations']}, "
                    f"utilization {result['utilization']:.3f}; per process "
                    f"{result['per_process']}, errors {result['errors'] or 'none'}, "
                    f"median call {result['call_median_ms']:.0f} ms",
                    flush=True,
                )
                print(
                    f"  permit reuse lag past the window: mean {result['lag_ms']:.0f} ms, "
                    f"median {result['lag_median_ms']:.0f} ms, p90 {result['lag_p90_ms']:.0f} ms;"
                    f" long-run utilization window/(window+mean lag): {result['steady']:.3f}",
                    flush=True,
                )
    for configured in args.configured:
        mine = [r for r in results if r["configured"] == configured]
        parts = ", ".join(f"{r['procs']} procs: {r['utilization']:.2f}" for r in mine)
        violations = sum(r["violations"] for r in mine)
        print(f"utilization {configured}: {parts} (goal >= {GOAL}), violations: {violations}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
