"""Creates per second through the full stack against bare httpx, side by side in one run.

One sandbox (rate limit off), one SQLite state store in a temporary directory. Each round
measures, for the same number of seconds:

- bare: one keep-alive `httpx.Client` POSTing `/api/v1/statuses` (a reply, JSON body,
  `Idempotency-Key`), reading the answer's id;
- full: `Deliverer.deliver(Draft)` for a post never answered before: plan and claim in the
  ledger (with the quota check), then the create through the guarded platform (tenacity,
  breaker check, the Mastodon adapter's request through the transport door: a rate permit
  from the SQLite bucket under its file lock, the blocked-until row and the announced
  budget, the request, the permit settled with the answer's headers), record sent.

The order alternates (bare full, full bare, ...) so drift and machine noise hit both. The
limiter is in the path but never the bottleneck (a bucket far above the rate reached), and
the quotas are checked but never reached. The last line is the ratio full/bare: the median
of the per-round ratios (each pair measured back to back).

    python bench/client_overhead.py [--rounds 8] [--seconds 2.0] [--breakdown/--no-breakdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import sqlalchemy as sa
from _common import REPLY_TEXT, FullStack, high_quotas, median, seed_subjects, spread

from social_pipelines.delivery import Outcome
from social_pipelines.models import CreatePost
from social_pipelines.platforms.http import rate_limit_info
from social_pipelines.platforms.mastodon import MastodonPlatform
from social_pipelines.resilience.budget import Permit
from social_pipelines.sandbox.accounts import BRAND, token_for
from social_pipelines.sandbox.process import SandboxProcess

GOAL = 0.5
T = TypeVar("T")
# The limiter stays in the path with a realistic bucket size (a few hundred items in its
# window, as Mastodon's 300 per 300 s) but can never be what limits the rate.
OVERRIDES = {
    "mastodon": {
        "buckets": {"account": [{"limit": 1_000_000, "seconds": 1.0}]},
        "endpoints": {"*": ["account"]},
        "quota_per_hour": 10_000_000,
        "quota_per_day": 100_000_000,
    }
}

# The breakdown's rows.
PLAN = "ledger plan"
CLAIM = "ledger claim, as the deliverer does"
CLAIM_NO_QUOTAS = "ledger claim, no quotas"
BREAKER = "breaker check"
ACQUIRE = "door permit: acquire (bucket file lock, blocked-until, budget)"
SETTLE = "door permit: settle (budget)"
GUARDED = "create through the guarded platform (breaker, door, tenacity)"
ALONE = "create, adapter alone (door takes no permit)"
RECORD = "ledger record sent"
BARE = "create, bare httpx (the same request, for reference)"


class Bare:
    """The baseline: bare httpx with keep-alive, the same request the adapter sends."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.client = sandbox.client(BRAND, timeout=10.0)
        self.sandbox = sandbox
        self.subjects: list[str] = []
        self.sent = 0

    def refill(self) -> None:
        """Posts to answer (a reply to an existing post, as the full stack sends)."""
        self.subjects = seed_subjects(self.sandbox, 200, prefix="bare")

    def one(self) -> None:
        subject = self.subjects[self.sent % len(self.subjects)]
        response = self.client.post(
            "/api/v1/statuses",
            json={"status": REPLY_TEXT, "in_reply_to_id": subject},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        response.raise_for_status()
        if not response.json()["id"]:
            raise RuntimeError("no id in the answer")
        self.sent += 1


class Full:
    """The full stack, one new delivery per call."""

    def __init__(self, stack: FullStack, sandbox: SandboxProcess) -> None:
        self.stack = stack
        self.sandbox = sandbox
        self.pool: list[str] = []
        self.sent = 0

    def refill(self, needed: int) -> None:
        """Seed posts to answer (outside the timed part): every delivery is a new one."""
        self.pool = seed_subjects(self.sandbox, needed, prefix="full")

    def one(self) -> None:
        result = self.stack.deliverer.deliver(self.stack.draft(self.pool.pop()))
        if result.outcome != Outcome.SENT:
            raise RuntimeError(f"delivery not sent: {result}")
        self.sent += 1


def rate(one: Callable[[], None], seconds: float) -> float:
    """Calls per second of `one` over `seconds`."""
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        one()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


class PassThroughDoor:
    """A door that takes no permit and settles nothing: the adapter alone, for the
    comparison in `breakdown` only (never a way to reach a platform)."""

    def __init__(self) -> None:
        self.response: httpx.Response | None = None

    def enter(self, endpoint: str) -> object:
        return None

    def leave(self, permit: object, response: httpx.Response | None, *, sent: bool) -> None:
        self.response = response


def breakdown(stack: FullStack, sandbox: SandboxProcess, count: int) -> None:
    """Where a full-stack delivery spends its time: the Deliverer's steps run one by one.

    Deliveries alternate between the real steps (claim with quotas, the create through the
    guarded platform: tenacity, breaker, the transport door's permit and settle) and
    stripped ones (claim without quotas; then the pieces of the guarded create timed
    alone: the breaker check, the door's permit acquire, the create through a second
    Mastodon adapter whose door takes no permit, the permit's settle with that answer, and
    the baseline's bare request for the same post). The cost of the quota check and of
    everything around the adapter show as differences.
    """
    subjects = seed_subjects(sandbox, count, prefix="b")
    platform = stack.platform
    ledger = stack.store.ledger
    rate_limits = stack.connector.rate_limits
    door = PassThroughDoor()
    alone = MastodonPlatform(
        sandbox.url, token_for(BRAND), door=door, timeout=platform.policy.call_timeout
    )
    bare = Bare(sandbox)
    totals: dict[str, list[float]] = {}

    def timed(name: str, func: Callable[[], T]) -> T:
        started = time.perf_counter()
        result = func()
        totals.setdefault(name, []).append(time.perf_counter() - started)
        return result

    def acquire() -> Permit:
        # What DoorTransport's enter does for a create (endpoint class "write").
        return rate_limits.acquire(platform.name, platform.account, platform.policy, "write")

    def settle(permit: Permit) -> None:
        # What its leave does with the answer (no 429 here, so no block).
        response = door.response
        info = rate_limit_info(response.headers) if response is not None else None
        rate_limits.settle(permit, info, sent=True)

    try:
        for index, subject in enumerate(subjects):
            real = index % 2 == 0
            draft = stack.draft(subject)
            key = draft.delivery_id
            post = CreatePost(text=draft.text, in_reply_to_id=subject)
            timed(PLAN, lambda draft=draft: ledger.plan(draft))
            quotas = stack.deliverer.quotas if real else ()
            claim = timed(
                CLAIM if real else CLAIM_NO_QUOTAS,
                lambda key=key, quotas=quotas: ledger.claim(
                    key, run_id="bench", lease=stack.deliverer.lease, quotas=quotas
                ),
            )
            if real:
                published = timed(
                    GUARDED,
                    lambda post=post, key=key: platform.create_post(post, idempotency_key=key),
                )
            else:
                timed(BREAKER, platform.breaker.check)
                permit = timed(ACQUIRE, acquire)
                try:
                    published = timed(
                        ALONE,
                        lambda post=post, key=key: alone.create_post(post, idempotency_key=key),
                    )
                finally:
                    timed(SETTLE, lambda permit=permit: settle(permit))
                # The baseline's request, answering the same post (not a delivery).
                bare.subjects = [subject]
                timed(BARE, bare.one)
            timed(
                RECORD,
                lambda key=key, claim=claim, published=published: ledger.record_sent(
                    key, claim.attempt, published
                ),
            )
    finally:
        alone.close()
        bare.client.close()
    mean = {name: 1000 * statistics.fmean(values) for name, values in totals.items()}
    print(
        f"breakdown: {count} deliveries, steps timed one by one, mean ms "
        f"(ledger holds {stack.sent_rows()} sent rows):"
    )
    rows = (PLAN, CLAIM, CLAIM_NO_QUOTAS, BREAKER, ACQUIRE, SETTLE, GUARDED, ALONE, BARE, RECORD)
    for name in rows:
        print(f"  {name:<62} {mean[name]:6.2f}")
    print(
        f"  {'sum of the real steps (plan, claim, guarded create, record)':<62} "
        f"{mean[PLAN] + mean[CLAIM] + mean[GUARDED] + mean[RECORD]:6.2f}"
    )
    around = mean[GUARDED] - mean[ALONE]
    parts = mean[BREAKER] + mean[ACQUIRE] + mean[SETTLE]
    print(f"  {'guarded create - adapter alone':<62} {around:6.2f}")
    print(f"  {'  of which breaker check + permit acquire + settle':<62} {parts:6.2f}")
    print(
        f"  {'quota check (claim - claim without quotas)':<62} "
        f"{mean[CLAIM] - mean[CLAIM_NO_QUOTAS]:6.2f}"
    )
    print(f"  per delivery, state store: {sql_per_delivery(stack, sandbox, 50)}")


def sql_per_delivery(stack: FullStack, sandbox: SandboxProcess, count: int) -> str:
    """SQL the state store's engine runs per `Deliverer.deliver` (the bucket file aside)."""
    statements: Counter[str] = Counter()

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    subjects = seed_subjects(sandbox, count, prefix="s")
    engine = stack.store.engine
    sa.event.listen(engine, "before_cursor_execute", seen)
    try:
        for subject in subjects:
            stack.deliverer.deliver(stack.draft(subject))
    finally:
        sa.event.remove(engine, "before_cursor_execute", seen)
    begins = statements.pop("BEGIN", 0)
    other = ", ".join(f"{n / count:g} {kind}" for kind, n in sorted(statements.items()))
    return f"{begins / count:g} transactions opened with BEGIN (IMMEDIATE), {other}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="measurement pairs (default 8)")
    parser.add_argument(
        "--seconds", type=float, default=2.0, help="seconds per measurement (default 2.0)"
    )
    parser.add_argument(
        "--breakdown",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the full stack's steps one by one (default on)",
    )
    parser.add_argument(
        "--quotas",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="check the (high) posting quotas on every claim, as production does (default on)",
    )
    args = parser.parse_args(argv)
    quotas = high_quotas() if args.quotas else []

    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        root = Path(tmp)
        with SandboxProcess(root / "sandbox.db", rate_limit_enabled=False) as sandbox:
            stack = FullStack(root / "state", sandbox.url, overrides=OVERRIDES, quotas=quotas)
            bare = Bare(sandbox)
            full = Full(stack, sandbox)
            bare_rates: list[float] = []
            full_rates: list[float] = []
            ratios: list[float] = []
            created = 0
            try:
                print(
                    f"{'round':>5}  {'bare req/s':>10}  {'full req/s':>10}  {'full/bare':>9}  "
                    f"{'sent rows in ledger':>19}"
                )
                for index in range(-1, args.rounds):  # round -1 warms both paths up
                    # The sandbox's create gets slower as the account's posts pile up (it
                    # counts them for every answer): start every round from an empty one.
                    sandbox.reset()
                    bare.refill()
                    best = max([*full_rates, 200.0])
                    full.refill(int(best * args.seconds * 2) + 200)
                    sent_before = bare.sent + full.sent
                    seconds = args.seconds if index >= 0 else 0.5
                    if index % 2 == 0:
                        b = rate(bare.one, seconds)
                        f = rate(full.one, seconds)
                    else:
                        f = rate(full.one, seconds)
                        b = rate(bare.one, seconds)
                    sent = bare.sent + full.sent - sent_before
                    found = sandbox.stats()["statuses_created"]
                    if found != sent:
                        raise RuntimeError(f"round {index + 1}: sent {sent}, sandbox has {found}")
                    created += sent
                    if index < 0:
                        continue
                    bare_rates.append(b)
                    full_rates.append(f)
                    ratios.append(f / b)
                    print(
                        f"{index + 1:>5}  {b:>10.0f}  {f:>10.0f}  {f / b:>9.2f}  "
                        f"{stack.sent_rows():>19}",
                        flush=True,
                    )
                if args.breakdown:
                    sandbox.reset()  # as before a round: the HTTP rows compare with the rates
                    breakdown(stack, sandbox, 300)
            finally:
                bare.client.close()
                stack.close()

    print(
        f"bare httpx: median {median(bare_rates):.0f} req/s ({spread(bare_rates)}); "
        f"full stack: median {median(full_rates):.0f} req/s ({spread(full_rates)}); "
        f"ratio of medians {median(full_rates) / median(bare_rates):.2f}; "
        f"{created} creates, each round's count checked on the sandbox"
    )
    ratio = median(ratios)
    print(f"ratio full_stack/bare_httpx: {ratio:.2f} (goal >= {GOAL})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
