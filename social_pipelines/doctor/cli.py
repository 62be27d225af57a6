"""`social-pipelines doctor [--json] [--no-daemon-ok] [--online] [--days N]`.

Exit status: 0 nothing is a problem (warnings allowed), 1 something is, 2 the settings
cannot be used (the reason is printed, as for every command).

By default doctor calls no platform: it reads what the runs keep (reconnect marks, token
expiry, circuits, the ledger), so it is safe to run as often as a health probe likes, and
a platform that is down costs it nothing (a `whoami` against an unreachable server takes
seconds of retries and counts towards its circuit). A refused token is already on record:
runs mark the account `reconnect_needed`, and token_refresh_job verifies marked accounts
every 15 minutes. `--online` adds one `whoami` per account, the call `accounts check`
makes (a marked account that passes is cleared, as there).
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any

from social_pipelines.clock import utcnow
from social_pipelines.doctor.listeners import webserver_check
from social_pipelines.doctor.report import Check, Status, as_json, as_table, exit_status
from social_pipelines.doctor.state import (
    Horizon,
    account_checks,
    alert_checks,
    breaker_checks,
    delivery_checks,
    post_checks,
    quota_checks,
    schema_check,
    settings_check,
)
from social_pipelines.settings import Settings, load_settings
from social_pipelines.wiring import wire_settings

DEFAULT_DAYS = 7


@dataclass(frozen=True)
class Options:
    no_daemon_ok: bool = False
    online: bool = False
    days: int = DEFAULT_DAYS


def run_checks(settings: Settings, options: Options) -> list[Check]:
    """Every check, in the order a person reads them: configuration, Dagster (is anything
    running?), then what the runs left in the state store, then who can reach the UI."""
    from social_pipelines.doctor.instance import daemon_checks, instigator_checks, open_instance

    now = utcnow()
    checks = [settings_check(settings)]
    schema, usable = schema_check(settings)
    checks.append(schema)
    home = settings.dagster_home
    with open_instance(home) as (instance_row, instance):
        checks.append(instance_row)
        if instance is not None and instance_row.status != Status.PROBLEM:
            daemon_rows, daemons = daemon_checks(instance, now, no_daemon_ok=options.no_daemon_ok)
            checks += daemon_rows
            checks += instigator_checks(instance, daemons, now)
    if usable:
        wiring = wire_settings(settings)
        horizon = Horizon(now=now, days=options.days)
        checks += account_checks(settings, wiring, now, online=options.online)
        checks += breaker_checks(wiring, now)
        checks += quota_checks(wiring, now)
        checks += delivery_checks(wiring, horizon)
        checks += post_checks(wiring, horizon)
        checks += alert_checks(wiring, now)
    checks.append(webserver_check())
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    # Dagster reads DAGSTER_HOME itself; the settings' default (as `make` and `demo` have it).
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home.resolve()))
    checks = run_checks(
        settings, Options(no_daemon_ok=args.no_daemon_ok, online=args.online, days=args.days)
    )
    print(as_json(checks) if args.json else as_table(checks))
    return exit_status(checks)


def _days(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of days, at least 1")
    return number


def add_commands(commands: Any) -> None:
    """`doctor` on the `social-pipelines` parser."""
    doctor = commands.add_parser(
        "doctor",
        help="check settings, store, daemon, schedules and sensors, accounts, circuits, "
        "quotas, deliveries and posts; exit 1 on any problem",
    )
    doctor.add_argument("--json", action="store_true", help="one JSON document")
    doctor.add_argument(
        "--no-daemon-ok",
        action="store_true",
        help="no daemon running is a warning, not a problem (the embedded default without "
        "`make dev`)",
    )
    doctor.add_argument(
        "--online", action="store_true", help="also make one whoami per account (calls them)"
    )
    doctor.add_argument(
        "--days",
        type=_days,
        default=DEFAULT_DAYS,
        help=f"dead letters and missed posts this recent are problems (default {DEFAULT_DAYS})",
    )
    doctor.set_defaults(handler=cmd_doctor)
