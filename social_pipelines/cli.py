"""The `social-pipelines` command: the demo behind `make run`, `make dev`, and the ledger.

`demo` is what a newcomer sees first: a local sandbox platform, a few dozen posts, one run
of the reply job on the real Dagster instance (so the run shows up in the UI afterwards),
and the replies it posted. Run it again and it posts nothing new, because the ledger
remembers every reply.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from social_pipelines.accounts_cli import add_commands as add_account_commands
from social_pipelines.delivery import NEW, Outcome
from social_pipelines.doctor.cli import add_commands as add_doctor_command
from social_pipelines.errors import ConfigError
from social_pipelines.logs import configure as configure_logging
from social_pipelines.models import DeliveryState
from social_pipelines.posts_cli import add_commands
from social_pipelines.run_context import current_step
from social_pipelines.settings import Settings, load_settings

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from social_pipelines.replies.steps import CampaignReport


DEMO_CALENDAR = Path(__file__).resolve().parent / "defaults" / "calendar"


def _sandbox_db(settings: Settings) -> Path:
    return settings.dagster_home / "sandbox.db"


def _print_reports(reports: list[CampaignReport]) -> tuple[int, int]:
    new = already = 0
    for report in reports:
        for reply in report.replies:
            if reply.outcome in NEW:
                print(f"replied [{report.campaign}] {reply.url}")
                print(f"    to {reply.in_reply_to_url}: {reply.text}")
            elif reply.outcome == Outcome.DRY_RUN:
                print(f"would reply [{report.campaign}] to {reply.in_reply_to_url}: {reply.text}")
            elif reply.outcome != Outcome.ALREADY_SENT:
                print(f"{reply.outcome} [{report.campaign}] {reply.in_reply_to_url}: {reply.error}")
        new += report.new
        already += report.already_answered
    return new, already


def demo(args: argparse.Namespace) -> int:
    """Start the sandbox, seed it, run reply_job for the last complete window, stop."""
    from dagster import BetaWarning, DagsterInstance

    # Raised by dagster itself when Definitions binds resources to a sensor; not ours.
    warnings.filterwarnings("ignore", category=BetaWarning)

    from social_pipelines.partitions import last_complete_window
    from social_pipelines.sandbox.demo_posts import demo_posts
    from social_pipelines.sandbox.process import SandboxProcess

    settings = load_settings()
    # Same default as the Makefile: the instance lives in the checkout unless told otherwise.
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home.resolve()))
    with SandboxProcess(db_path=_sandbox_db(settings)) as sandbox:
        os.environ["SOCIAL_SANDBOX_URL"] = sandbox.url
        seeded = sandbox.seed(demo_posts())
        print(f"sandbox at {sandbox.url} ({seeded['created']} posts seeded)")

        # Built from the settings as they are now, the sandbox's URL included: the module's
        # `defs` holds whatever the environment said when it was first imported.
        from social_pipelines.definitions import build_definitions

        defs = build_definitions(load_settings())
        window = args.window or last_complete_window()
        if window is None:
            print("no reply window has ended yet", file=sys.stderr)
            return 1
        run_config = {
            "ops": {"plan_campaigns": {"config": {"dry_run": args.dry_run}}},
            # The full event log is in the UI; the terminal shows what was posted.
            "loggers": {"console": {"config": {"log_level": args.log_level}}},
        }
        instance = DagsterInstance.get()
        result = defs.get_job_def("reply_job").execute_in_process(
            instance=instance,
            partition_key=window,
            run_config=run_config,
            raise_on_error=False,
        )
        if not result.success:
            failures = [
                f"{event.step_key}: {error.message.strip()}"
                for event in result.all_events
                if event.is_step_failure and (error := event.step_failure_data.error) is not None
            ]
            print(f"reply_job failed (run {result.run_id}):", file=sys.stderr)
            for failure in failures or ["see the run in the Dagster UI"]:
                print(f"  {failure}", file=sys.stderr)
            return 1
        new, already = _print_reports(result.output_for_node("summarize"))
        print(f"window {window} UTC, run {result.run_id}")
        # The two totals come last, together: what a person (and a script) reads.
        return _publish_demo(instance, args, f"replies: {new} new, {already} already answered")
    return 0


def _publish_demo(instance: DagsterInstance, args: argparse.Namespace, replies: str) -> int:
    """Sync the demo calendar and publish its posts, images rendered, to the sandbox."""
    from dagster import DagsterInvariantViolationError

    from social_pipelines.definitions import build_definitions
    from social_pipelines.ops.publish import PUBLISH_OPS
    from social_pipelines.publishing.states import TargetState, post_view
    from social_pipelines.publishing.steps import AccountReport
    from social_pipelines.wiring import wire_settings

    settings = load_settings().model_copy(update={"calendar_dir": DEMO_CALENDAR})
    report = wire_settings(settings).sync_calendar()
    assert report is not None
    for line in report.lines()[:-1]:
        print(line)
    load = wire_settings(settings).load_calendar()
    post_ids = sorted(load.posts) if load else []
    run_config = {
        # The demo's posts are dated in the past: sent on purpose, as force_late does.
        "ops": {
            "plan_publishes": {
                "config": {"post_ids": post_ids, "force_late": True, "dry_run": args.dry_run}
            }
        },
        "loggers": {"console": {"config": {"log_level": args.log_level}}},
    }
    result = (
        build_definitions(settings)
        .get_job_def("publish_job")
        .execute_in_process(instance=instance, run_config=run_config, raise_on_error=False)
    )
    reports: list[AccountReport] = []
    for name in PUBLISH_OPS:
        node = f"publish_{name}"
        try:
            reports += list(result.output_for_node(node).values())
        except DagsterInvariantViolationError:
            continue  # no account of that platform had anything to publish
    new = 0
    for account_report in sorted(reports, key=lambda r: r.account):
        for target in account_report.targets:
            if target.outcome in NEW:
                new += 1
                print(f"published [{target.post_id}] {target.target} {target.url}")
            elif target.outcome == Outcome.DRY_RUN:
                print(f"would publish [{target.post_id}] {target.target}: {target.text}")
            elif target.outcome != Outcome.ALREADY_SENT:
                print(f"{target.outcome} [{target.post_id}] {target.target}: {target.result.error}")
    # Targets out before this run (a finished post is not even handed to a step again).
    outbox = wire_settings(settings).store.outbox
    records = list(outbox.get_many(post_ids).values())
    deliveries = outbox.deliveries(records)
    out = sum(
        target.state == TargetState.PUBLISHED
        for record in records
        for target in post_view(record, deliveries[record.post_id], outbox.clock()).targets
    )
    already = out - new
    print(replies)
    if not result.success:
        print(
            f"publish_job failed (run {result.run_id}); see the run in the Dagster UI",
            file=sys.stderr,
        )
        return 1
    print(f"published: {new} new, {already} already published")
    return 0


def dev(args: argparse.Namespace) -> int:
    """The Dagster UI and daemon on loopback, with a seeded sandbox to post to.

    Ctrl-C, or SIGTERM to this process alone, stops the webserver, the daemon, the code
    server and any run still going (`supervise.py`), then the sandbox."""
    from social_pipelines.sandbox.demo_posts import demo_posts
    from social_pipelines.sandbox.process import SandboxProcess
    from social_pipelines.supervise import run_until_stopped

    settings = load_settings()
    port = int(settings.sandbox_url.rsplit(":", 1)[-1].split("/")[0])
    # Its own process group: a terminal's Ctrl-C must not stop it before the runs using it.
    with SandboxProcess(db_path=_sandbox_db(settings), port=port, own_group=True) as sandbox:
        sandbox.seed(demo_posts())
        env = {**os.environ, "SOCIAL_SANDBOX_URL": sandbox.url}
        print(f"sandbox at {sandbox.url}; Dagster UI at http://{args.host}:{args.port}")
        dagster = str(Path(sys.executable).with_name("dagster"))
        command = [dagster, "dev", "--host", args.host, "--port", str(args.port)]
        code = run_until_stopped(command, env=env)
    print("stopped: Dagster and the sandbox", file=sys.stderr)
    return code


def ledger(args: argparse.Namespace) -> int:
    """Print the ledger's deliveries, most recently changed first, and say when the list
    was cut at `--limit`."""
    from social_pipelines.errors import summarize
    from social_pipelines.wiring import wire_settings

    store = wire_settings(load_settings()).store
    states = [DeliveryState(s) for s in args.state] if args.state else None
    # One more than asked for tells whether there are more.
    records = store.ledger.list(states=states, limit=args.limit + 1, newest=True)
    which = f" in state {', '.join(args.state)}" if args.state else ""
    if not records:
        print(f"no deliveries{which}")
        return 0
    for record in records[: args.limit]:
        print(
            f"{record.updated_at:%Y-%m-%d %H:%M:%S} {record.state:<8} {record.platform}"
            f" {record.kind} {record.subject} attempts={record.attempts}"
            f" {record.remote_url or summarize(record.error)}"
        )
    if len(records) > args.limit:
        print(
            f"showing the newest {args.limit} deliveries{which} of more; use --limit N to see more"
        )
    return 0


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="social-pipelines", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("demo", help="run reply_job once against a local sandbox")
    run.add_argument("--window", help="partition key, e.g. 2026-11-23-06:00 (default: last)")
    run.add_argument("--dry-run", action="store_true", help="post nothing, show the drafts")
    run.add_argument("--log-level", default="WARNING", help="Dagster console log level")
    run.set_defaults(handler=demo)

    ui = commands.add_parser("dev", help="Dagster UI and daemon with a seeded sandbox")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(handler=dev)

    states = [str(state) for state in DeliveryState]
    show = commands.add_parser("ledger", help="list deliveries, most recently changed first")
    show.add_argument(
        "--state",
        action="append",
        choices=states,
        metavar="STATE",
        help=f"only this state (repeatable): {', '.join(states)}",
    )
    show.add_argument(
        "--limit", type=_positive, default=200, help="at most this many (default 200)"
    )
    show.set_defaults(handler=ledger)

    add_commands(commands)
    add_account_commands(commands)
    add_doctor_command(commands)

    args = parser.parse_args(argv)
    try:
        configure_logging(load_settings(), context=current_step)
        return args.handler(args)
    except ConfigError as error:
        print(f"social-pipelines: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
