"""The chaos tests' world: a sandbox, accounts and campaigns files, a Dagster home, driver processes
that can be SIGKILLed, the recovery that run monitoring would do, and the verdict.

The verdict is computed from the two records that must agree: the sandbox (what the
platform really holds, `/_sandbox/posted` and `/_sandbox/stats`) and the delivery ledger
(`StateStore.open(url).ledger.list()`).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from social_pipelines.models import DeliveryKind, DeliveryState, publish_subject
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.store import OutboxStatus, StateStore

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = "social_pipelines_tests.chaos.driver"
# Claims of a killed run lapse this long after its last heartbeat (a quarter of it).
CLAIM_LEASE_SECONDS = 4.0


def long_mode() -> bool:
    """`make chaos` sets SOCIAL_CHAOS_LONG=1: more deliveries, kills and processes."""
    return os.environ.get("SOCIAL_CHAOS_LONG", "").strip().lower() not in (
        "",
        "0",
        "false",
        "no",
        "off",
    )


# -- configuration written for the processes under test -----------------------------------


@dataclass(frozen=True)
class Account:
    name: str  # in the accounts file
    username: str  # on the sandbox

    @property
    def token_env(self) -> str:
        return f"CHAOS_TOKEN_{self.name.upper()}"


@dataclass(frozen=True)
class CampaignSpec:
    name: str
    account: str
    query: str
    max_replies: int = 100
    max_age_hours: float = 24
    blocklist: tuple[str, ...] = ("giveaway",)
    # No query word in the reply: our own replies must not crowd search results.
    template: str = "Thanks @{author}, noted."


def write_accounts(path: Path, accounts: Iterable[Account]) -> None:
    lines: list[str] = []
    for account in accounts:
        lines += [
            f"[accounts.{account.name}]",
            'platform = "mastodon"',
            'instance_url = "${SOCIAL_SANDBOX_URL}"',
            f'token_env = "{account.token_env}"',
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_campaigns(path: Path, campaigns: Iterable[CampaignSpec]) -> None:
    lines: list[str] = []
    for campaign in campaigns:
        lines += [
            "[[campaigns]]",
            f'name = "{campaign.name}"',
            f'account = "{campaign.account}"',
            f'query = "{campaign.query}"',
            f"max_replies = {campaign.max_replies}",
            "search_limit = 40",
            f"max_age_hours = {campaign.max_age_hours}",
            f"blocklist = {json.dumps(list(campaign.blocklist))}",
            f"template = {json.dumps(campaign.template)}",
            "",
        ]
    path.write_text("\n".join(lines), encoding="utf-8")


def mastodon_policy(**fields: Any) -> str:
    """`SOCIAL_POLICIES` overriding the mastodon row (retries fast, quotas off, ...)."""
    return json.dumps({"mastodon": fields})


# -- the world -------------------------------------------------------------------------------


@dataclass
class World:
    root: Path
    sandbox: SandboxProcess
    accounts: list[Account]
    env: dict[str, str]
    logs: Path
    spawned: int = 0

    @property
    def home(self) -> Path:
        return Path(self.env["DAGSTER_HOME"])

    @property
    def store_url(self) -> str:
        return self.env["SOCIAL_DATABASE_URL"]

    def store(self) -> StateStore:
        return StateStore.open(self.store_url)

    def account(self, name: str) -> Account:
        return next(a for a in self.accounts if a.name == name)

    def spawn(self, *args: str, interactive: bool = False) -> subprocess.Popen[str]:
        """A driver process with this world's environment; stderr goes to a log file."""
        self.spawned += 1
        stem = f"{self.spawned:03d}-{args[0]}-{args[1] if len(args) > 1 else ''}"
        stderr = (self.logs / f"{stem}.err").open("w")
        stdout: Any = subprocess.PIPE if interactive else (self.logs / f"{stem}.out").open("w")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", DRIVER, *args],
                env=self.env,
                cwd=self.root,
                stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                text=True,
            )
        finally:
            stderr.close()
            if not interactive:
                stdout.close()


def make_world(
    root: Path,
    sandbox: SandboxProcess,
    accounts: list[Account],
    campaigns: list[CampaignSpec],
    *,
    http_timeout: float,
    policy: dict[str, Any],
) -> World:
    """Accounts on the sandbox, accounts and campaigns files, a Dagster home with the project's
    dagster.yaml, and the environment every driver process runs with."""
    home = root / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    for account in accounts:
        sandbox.create_account(account.username)
    accounts_file = root / "accounts.toml"
    write_accounts(accounts_file, accounts)
    campaigns_file = root / "campaigns.toml"
    write_campaigns(campaigns_file, campaigns)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOCIAL_", "DAGSTER_", "CHAOS_"))
    }
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")])),
            "DAGSTER_HOME": str(home),
            "SOCIAL_DATABASE_URL": f"sqlite:///{root / 'state.db'}",
            "SOCIAL_SANDBOX_URL": sandbox.url,
            "SOCIAL_ACCOUNTS_FILE": str(accounts_file),
            "SOCIAL_CAMPAIGNS_FILE": str(campaigns_file),
            "SOCIAL_HTTP_TIMEOUT": str(http_timeout),
            "SOCIAL_POLICIES": mastodon_policy(**policy),
            "SOCIAL_CLAIM_LEASE_SECONDS": str(CLAIM_LEASE_SECONDS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for account in accounts:
        env[account.token_env] = sandbox.token(account.username)
    world = World(root=root, sandbox=sandbox, accounts=accounts, env=env, logs=logs)
    # Create the instance's storage once, as a deployment does: processes that all find
    # an empty DAGSTER_HOME race to create the same SQLite tables.
    with dagster_instance(world):
        pass
    return world


class Worker:
    """An interactive driver process: JSON commands on stdin, JSON lines on stdout."""

    def __init__(self, world: World, *args: str, ready_timeout: float = 60.0) -> None:
        self.proc = world.spawn(*args, interactive=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self.read(ready_timeout)
        if ready.get("event") != "ready":
            raise RuntimeError(f"worker {args} did not get ready: {ready}")

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def send(self, command: dict[str, Any] | str) -> None:
        assert self.proc.stdin is not None
        text = command if isinstance(command, str) else json.dumps(command)
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 120.0) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"worker {self.proc.pid} said nothing for {timeout} s") from None
        if line is None:
            raise RuntimeError(f"worker {self.proc.pid} exited ({self.proc.wait()})")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- runs, kills and what run monitoring would do -----------------------------------------------


@dataclass
class RunRecord:
    job: str
    run_id: str
    killed: bool = False
    kill_reason: str = ""
    statuses_in_run: int = 0
    returncode: int | None = None
    seconds: float = 0.0

    @property
    def mid_posting(self) -> bool:
        return self.killed and self.statuses_in_run > 0


@dataclass
class KillTrigger:
    """Kill when the sandbox has created `after_statuses` new statuses during the run, or
    after `after_seconds` of run time (which may land before posting starts)."""

    after_statuses: int | None = None
    after_seconds: float | None = None

    def describe(self) -> str:
        if self.after_statuses is not None:
            return f"after {self.after_statuses} new statuses"
        return f"after {self.after_seconds:.1f} s"


def start_job(
    world: World,
    job: str,
    *,
    partition: str | None = None,
    campaigns: Iterable[str] = (),
    post_ids: Iterable[str] = (),
) -> tuple[subprocess.Popen[str], RunRecord]:
    """Start a job in a driver process (it runs on the world's persistent instance);
    `post_ids` are a `publish_job`'s posts (none: every due post)."""
    run_id = str(uuid.uuid4())
    args = ["job", job, "--run-id", run_id]
    if partition:
        args += ["--partition", partition]
    for campaign in campaigns:
        args += ["--campaign", campaign]
    for post_id in post_ids:
        args += ["--post-id", post_id]
    return world.spawn(*args), RunRecord(job=job, run_id=run_id)


def run_driver_job(
    world: World,
    job: str,
    *,
    partition: str | None = None,
    post_ids: Iterable[str] = (),
    kill: KillTrigger | None = None,
    on_progress: Callable[[int], None] | None = None,
    timeout: float = 900.0,
    poll: float = 0.05,
) -> RunRecord:
    """Execute a job in a driver process; SIGKILL it when the trigger fires."""
    base = world.sandbox.stats()["statuses_created"]
    started = time.monotonic()
    proc, record = start_job(world, job, partition=partition, post_ids=post_ids)
    run_id = record.run_id
    try:
        while proc.poll() is None:
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise TimeoutError(f"{job} run {run_id} still running after {timeout:.0f} s")
            created = world.sandbox.stats()["statuses_created"] - base
            if on_progress is not None:
                on_progress(created)
            fire = kill is not None and (
                (kill.after_statuses is not None and created >= kill.after_statuses)
                or (kill.after_seconds is not None and elapsed >= kill.after_seconds)
            )
            if fire and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                record.killed = True
                record.kill_reason = kill.describe()  # type: ignore[union-attr]
                break
            time.sleep(poll)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    record.returncode = proc.returncode
    record.seconds = time.monotonic() - started
    record.statuses_in_run = world.sandbox.stats()["statuses_created"] - base
    return record


def recover(world: World, runs: Iterable[RunRecord]) -> list[str]:
    """What happens to a SIGKILLed run before the work is run again.

    - Dagster: the run stays STARTED (the default run launcher cannot check a worker's
      health, so run monitoring never marks it failed); mark it failed with
      `report_run_failed`, as an operator would, so the instance is tidy. Also any other
      run left unfinished: no driver is alive now.
    - Ledger: nothing is released by hand and no sensor runs. The rows the dead run
      claimed lapse on their own once its heartbeat stops renewing them (the world's
      lease is `CLAIM_LEASE_SECONDS`); this waits for that, and fails if it takes longer
      than the lease and a margin. The next claim then reconciles them.
    """
    from dagster import DagsterRunStatus, RunsFilter

    run_ids = [run.run_id for run in runs]
    unfinished = [
        DagsterRunStatus.STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.CANCELING,
    ]
    marked: list[str] = []
    with dagster_instance(world) as instance:
        for run in instance.get_runs(filters=RunsFilter(statuses=unfinished)):
            instance.report_run_failed(
                run, "run process SIGKILLed; marked failed by the test, as an operator would"
            )
            marked.append(run.run_id)
    dead_runs = set(run_ids) | set(marked)
    ledger = world.store().ledger

    def still_held() -> bool:
        now = datetime.now(UTC)
        return any(
            record.run_id in dead_runs and record.lease_until and record.lease_until >= now
            for record in ledger.list(states=[DeliveryState.SENDING], limit=1_000_000)
        )

    if not wait_until(lambda: not still_held(), timeout=CLAIM_LEASE_SECONDS + 5, interval=0.1):
        raise AssertionError(f"claims of dead runs {sorted(dead_runs)} still held past the lease")
    return marked


@contextmanager
def dagster_instance(world: World) -> Iterator[Any]:
    """`DagsterInstance.get()` on the world's DAGSTER_HOME, as the driver processes see it."""
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(world.home)
    try:
        instance = DagsterInstance.get()
        try:
            yield instance
        finally:
            instance.dispose()
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


def run_statuses(world: World) -> Counter[str]:
    with dagster_instance(world) as instance:
        return Counter(str(run.status.value) for run in instance.get_runs())


# -- the verdict --------------------------------------------------------------------------------

FINAL = (DeliveryState.SENT, DeliveryState.DEAD)


@dataclass
class Verdict:
    deliveries: int = 0
    states: Counter[str] = field(default_factory=Counter)
    statuses_on_sandbox: int = 0
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    dead_without_reason: list[str] = field(default_factory=list)
    # Publishes: a status whose attachments are not the post's images, one for one.
    wrong_media: list[str] = field(default_factory=list)
    dead_reasons: Counter[str] = field(default_factory=Counter)
    faults: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    violations: int = 0

    @property
    def clean(self) -> bool:
        return not (
            self.duplicates
            or self.lost
            or self.orphans
            or self.unsettled
            or self.unexpected
            or self.dead_without_reason
            or self.wrong_media
        )

    def problems(self) -> str:
        parts = []
        for name in (
            "duplicates",
            "lost",
            "orphans",
            "unsettled",
            "unexpected",
            "dead_without_reason",
            "wrong_media",
        ):
            items = getattr(self, name)
            if items:
                parts.append(f"{name} ({len(items)}): " + "; ".join(items[:10]))
        return "\n".join(parts)


def compute_verdict(world: World, expected: dict[str, set[str]]) -> Verdict:
    """`expected`: account name -> ids of the posts it must answer (each exactly once)."""
    verdict = Verdict()
    records = world.store().ledger.list(limit=1_000_000)
    posted = world.sandbox.posted()
    stats = world.sandbox.stats()
    verdict.deliveries = len(records)
    verdict.statuses_on_sandbox = len(posted)
    verdict.faults = dict(stats["faults"])
    verdict.requests = stats["requests"]
    verdict.violations = stats["violations"]
    username = {account.name: account.username for account in world.accounts}
    by_id = {status["id"]: status for status in posted}
    answers = Counter(
        (status["account"], status["in_reply_to_id"])
        for status in posted
        if status["in_reply_to_id"]
    )
    verdict.duplicates = [
        f"{account} answered {target} {count} times"
        for (account, target), count in sorted(answers.items())
        if count > 1
    ]
    sent_remote_ids: set[str] = set()
    settled: dict[str, set[str]] = {name: set() for name in username}
    for record in records:
        verdict.states[str(record.state)] += 1
        who = username.get(record.account, record.account)
        label = f"{record.delivery_id[:10]} ({record.account} -> {record.subject})"
        if record.subject not in expected.get(record.account, set()):
            verdict.unexpected.append(f"{label}: a post that must not be answered")
        if record.state == DeliveryState.SENT:
            settled.setdefault(record.account, set()).add(record.subject)
            status = by_id.get(record.remote_id or "")
            if status is None:
                verdict.lost.append(f"{label}: sent as {record.remote_id}, not on the sandbox")
                continue
            sent_remote_ids.add(status["id"])
            if status["in_reply_to_id"] != record.subject or status["account"] != who:
                verdict.lost.append(
                    f"{label}: ledger points at {status['id']}, which answers "
                    f"{status['in_reply_to_id']} as {status['account']}"
                )
        elif record.state == DeliveryState.DEAD:
            settled.setdefault(record.account, set()).add(record.subject)
            reason = f"{record.error_kind or '?'}: {record.error or ''}".strip()
            verdict.dead_reasons[_reason_class(record.error_kind, record.error)] += 1
            if not record.error:
                verdict.dead_without_reason.append(label)
            if answers.get((who, record.subject)):
                verdict.orphans.append(f"{label}: dead ({reason}) but answered on the sandbox")
        else:
            verdict.unsettled.append(
                f"{label}: {record.state} after {record.attempts} attempts "
                f"({record.error_kind}: {record.error})"
            )
    for status in posted:
        if status["id"] not in sent_remote_ids:
            verdict.orphans.append(
                f"status {status['id']} by {status['account']} answering "
                f"{status['in_reply_to_id']}: no sent ledger row points at it"
            )
    for account, subjects in sorted(expected.items()):
        missing = sorted(subjects - settled.get(account, set()))
        for subject in missing:
            if not any(r.account == account and r.subject == subject for r in records):
                verdict.lost.append(f"{account} -> {subject}: never planned")
    return verdict


@dataclass(frozen=True)
class PublishTarget:
    """One target of a scheduled post: what its account must show exactly once."""

    post_id: str
    account: str  # the accounts file's name
    text: str  # what the target gets (`Post.body_for`)
    images: int


def compute_publish_verdict(world: World, targets: Iterable[PublishTarget]) -> Verdict:
    """Every target of every post `sent` with exactly one status of its own, or `dead` with
    its reason; statuses counted per (account, text) against the sent deliveries of that
    text (two posts of one text to one account are two statuses); each sent status with the
    post's image count attached; every post done in the outbox."""
    targets = list(targets)
    verdict = Verdict()
    store = world.store()
    records = store.ledger.list(limit=1_000_000)
    posted = world.sandbox.posted()
    stats = world.sandbox.stats()
    verdict.deliveries = len(records)
    verdict.statuses_on_sandbox = len(posted)
    verdict.faults = dict(stats["faults"])
    verdict.requests = stats["requests"]
    verdict.violations = stats["violations"]
    username = {account.name: account.username for account in world.accounts}
    wanted = {(t.account, publish_subject(t.post_id, t.account)): t for t in targets}
    by_id = {status["id"]: status for status in posted}
    statuses_per_text = Counter((s["account"], s["text"].strip()) for s in posted)
    sent_per_text: Counter[tuple[str, str]] = Counter()
    dead_per_text: Counter[tuple[str, str]] = Counter()
    scheduled_per_text = Counter((username[t.account], t.text.strip()) for t in targets)
    recorded_with: dict[str, list[str]] = {}
    planned: set[tuple[str, str]] = set()
    for record in records:
        verdict.states[str(record.state)] += 1
        who = username.get(record.account, record.account)
        label = f"{record.delivery_id[:10]} ({record.account} -> {record.subject})"
        target = wanted.get((record.account, record.subject))
        if target is None or record.kind != DeliveryKind.PUBLISH:
            verdict.unexpected.append(f"{label}: {record.kind} of no scheduled target")
            continue
        planned.add((record.account, record.subject))
        key = (who, target.text.strip())
        if record.state == DeliveryState.SENT:
            sent_per_text[key] += 1
            recorded_with.setdefault(record.remote_id or "", []).append(label)
            status = by_id.get(record.remote_id or "")
            if status is None:
                verdict.lost.append(f"{label}: sent as {record.remote_id}, not on the sandbox")
                continue
            if status["account"] != who or status["text"].strip() != target.text.strip():
                verdict.lost.append(
                    f"{label}: ledger points at {status['id']}, {status['text']!r} "
                    f"as {status['account']}"
                )
            if len(status["media_ids"]) != target.images:
                verdict.wrong_media.append(
                    f"{label}: status {status['id']} has {len(status['media_ids'])} "
                    f"attachment(s), the post {target.images} image(s)"
                )
        elif record.state == DeliveryState.DEAD:
            dead_per_text[key] += 1
            verdict.dead_reasons[_reason_class(record.error_kind, record.error)] += 1
            if not record.error:
                verdict.dead_without_reason.append(label)
        else:
            verdict.unsettled.append(
                f"{label}: {record.state} after {record.attempts} attempts "
                f"({record.error_kind}: {record.error})"
            )
    for remote_id, labels in sorted(recorded_with.items()):
        if len(labels) > 1:
            verdict.lost.append(
                f"status {remote_id} recorded for {len(labels)} deliveries: {', '.join(labels)}"
            )
    for status in posted:
        if status["id"] not in recorded_with:
            verdict.orphans.append(
                f"status {status['id']} by {status['account']} ({status['text'][:40]!r}): "
                "no sent ledger row points at it"
            )
    for key in sorted(set(statuses_per_text) | set(scheduled_per_text)):
        shown, sent = statuses_per_text[key], sent_per_text[key]
        if shown > sent:
            verdict.duplicates.append(
                f"{key[0]} shows {key[1][:40]!r} {shown} times for {sent} sent deliveries "
                f"({scheduled_per_text[key]} scheduled, {dead_per_text[key]} dead)"
            )
        if sent + dead_per_text[key] != scheduled_per_text[key]:
            verdict.lost.append(
                f"{key[0]} {key[1][:40]!r}: {scheduled_per_text[key]} scheduled, {sent} sent, "
                f"{dead_per_text[key]} dead"
            )
    media = Counter(media_id for status in posted for media_id in status["media_ids"])
    verdict.wrong_media += [
        f"media {media_id} attached to {count} statuses"
        for media_id, count in media.items()
        if count > 1
    ]
    for account, subject in sorted(set(wanted) - planned):
        verdict.lost.append(f"{account} -> {subject}: never planned")
    post_ids = sorted({t.post_id for t in targets})
    for post_id, record in sorted(store.outbox.get_many(post_ids).items()):
        if record.status != OutboxStatus.DONE:
            verdict.unsettled.append(f"post {post_id}: {record.status} in the outbox")
    return verdict


def _reason_class(kind: str | None, error: str | None) -> str:
    text = error or ""
    if text.startswith("out of attempts"):
        inner = text.split(":", 1)[1].strip() if ":" in text else ""
        return f"out of attempts (last: {inner[:60]})"
    return f"{kind or '?'}: {text[:60]}"


def print_summary(title: str, verdict: Verdict, extra: dict[str, Any]) -> str:
    lines = [
        f"== {title} ==",
        f"deliveries:          {verdict.deliveries} ({dict(verdict.states)})",
        f"statuses on sandbox: {verdict.statuses_on_sandbox}",
        f"requests:            {verdict.requests}",
        "faults injected:     "
        + ", ".join(f"{kind}={count}" for kind, count in sorted(verdict.faults.items()))
        + f" (total {sum(verdict.faults.values())})",
    ]
    lines += [f"{key + ':':<21}{value}" for key, value in extra.items()]
    lines += [
        f"duplicates:          {len(verdict.duplicates)}",
        f"lost:                {len(verdict.lost)}",
        f"orphans:             {len(verdict.orphans)}",
        f"unsettled:           {len(verdict.unsettled)}",
        f"unexpected:          {len(verdict.unexpected)}",
        f"wrong media:         {len(verdict.wrong_media)}",
        f"rate violations:     {verdict.violations}",
        f"dead:                {sum(verdict.dead_reasons.values())}",
    ]
    lines += [f"  {count} x {reason}" for reason, count in verdict.dead_reasons.most_common()]
    if not verdict.clean:
        lines.append(verdict.problems())
    text = "\n".join(lines)
    print("\n" + text, flush=True)
    return text


def reply_window_keys() -> list[str]:
    """The last complete two-hour window and the one before it (partition keys)."""
    from social_pipelines.partitions import last_complete_window, reply_windows

    last = last_complete_window()
    assert last is not None
    start = reply_windows.time_window_for_partition_key(last).start
    previous = reply_windows.get_prev_partition_window(start)
    assert previous is not None
    return [last, previous.start.astimezone(UTC).strftime(reply_windows.fmt)]


AUTHORS = (
    "datadiana",
    "pipeline_pete",
    "mlops_maya",
    "etl_ed",
    "sql_sara",
    "cloudkev",
    "orchestrator_oli",
    "analytics_amy",
)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
