"""The doctor's checks of Dagster: the instance answers, its daemon heartbeats, and every
schedule and sensor of the code location runs and ticks.

Storage answering proves little: a home whose daemon is down answers every query while no
schedule or sensor runs. The daemon's heartbeats (one per daemon thread, every 30 s) and
each instigator's last tick are the proof. Freshness is Dagster's own rule (a heartbeat is
healthy within its interval plus `DAGSTER_DAEMON_HEARTBEAT_TOLERANCE`, 1800 s by default,
what `dagster-daemon liveness-check` uses); a heartbeat missing three beats in a row is a
warning before that.

The code location is loaded in this process as Dagster loads it (an in-process location
of `social_pipelines.definitions`, named as workspace.yaml and pyproject name it), so the
instigators' default statuses are read as Dagster reads them (`get_current_instigator_
state`); their stored states and ticks are found by selector id (location, repository and
instigator names), which does not depend on the Python that loaded it. These are Dagster
internals (dagster._core, dagster._daemon), pinned by `dagster~=1.13.0`.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dagster import DagsterInstance, DefaultScheduleStatus, DefaultSensorStatus
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import (
    InstigatorTick,
    ScheduleInstigatorData,
    TickStatus,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._daemon.controller import (
    DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS,
    DEFAULT_HEARTBEAT_INTERVAL_SECONDS,
    get_daemon_statuses,
)

from social_pipelines.doctor.report import Check, Status, duration, ok, problem, warn, when

if TYPE_CHECKING:
    from dagster._core.remote_representation.external import (
        RemoteRepository,
        RemoteSchedule,
        RemoteSensor,
    )

# The code location as workspace.yaml and pyproject's [tool.dagster] name it (a test holds
# the three together): the instigators' selector ids are made from this name.
CODE_LOCATION = "social_pipelines"
DEFINITIONS_MODULE = "social_pipelines.definitions"
# Heartbeats are written every DEFAULT_HEARTBEAT_INTERVAL_SECONDS; this many missed in a
# row is worth a warning even while Dagster's tolerance still calls the daemon healthy.
MISSED_BEATS_WARNING = 3
# A running sensor is stale when its last tick is older than this many of its intervals
# (and at least STALE_FLOOR: the daemon reloads the workspace and evaluates in turn).
STALE_INTERVALS = 5
STALE_FLOOR = timedelta(minutes=3)
# A schedule's tick is written by the scheduler within a loop or two after its cron time.
SCHEDULE_GRACE = timedelta(minutes=5)
NO_DAEMON = "no daemon heartbeat: schedules and sensors are not running"
START_HINT = (
    "start it in the UI (Automation) or with `dagster {kind} start {name} -w workspace.yaml`"
)


def heartbeat_tolerance() -> float:
    """The tolerance the daemon's own liveness check uses (its environment variable)."""
    value = os.environ.get("DAGSTER_DAEMON_HEARTBEAT_TOLERANCE")
    return float(value) if value else float(DEFAULT_DAEMON_HEARTBEAT_TOLERANCE_SECONDS)


@contextmanager
def open_instance(home: Path) -> Iterator[tuple[Check, DagsterInstance | None]]:
    """The instance of `home` and a row saying whether its storage answers (None and a
    problem when it does not)."""
    try:
        instance = DagsterInstance.get()
    except Exception as error:  # whatever stops it opening is the finding
        yield _instance_problem(home, error), None
        return
    with instance:
        yield _instance_row(home, instance), instance


def _instance_problem(home: Path, error: Exception) -> Check:
    return problem("dagster instance", f"DAGSTER_HOME {home}: {_first_line(error)}")


def _instance_row(home: Path, instance: DagsterInstance) -> Check:
    try:
        runs = instance.get_runs_count()
    except Exception as error:
        return _instance_problem(home, error)
    detail = (
        f"DAGSTER_HOME {home}: {type(instance.run_storage).__name__}, "
        f"{type(instance.run_coordinator).__name__}, {runs} run(s)"
    )
    if not (home / "dagster.yaml").is_file():
        return warn(
            "dagster instance",
            f"{detail}; no dagster.yaml there, so Dagster's defaults apply (no run "
            "monitoring, no retention): `make home` installs the embedded profile",
        )
    return ok("dagster instance", detail)


@dataclass(frozen=True)
class Daemons:
    """Which daemon threads evaluate now, by type: SCHEDULER ticks the schedules, SENSOR
    the sensors. A running instigator whose daemon evaluates should be ticking."""

    evaluating: Mapping[str, bool]

    def up(self, daemon_type: str) -> bool:
        return self.evaluating.get(daemon_type, False)


def daemon_checks(
    instance: DagsterInstance, now: datetime, *, no_daemon_ok: bool
) -> tuple[list[Check], Daemons]:
    """One row when every required daemon heartbeats in time (or none does), else a row
    per finding naming the daemons it is about; `no_daemon_ok` turns "not running" into a
    warning, and then a daemon missing beats no longer counts as evaluating."""
    required = list(instance.get_required_daemon_types())
    failing = Status.WARN if no_daemon_ok else Status.PROBLEM
    accepted = " (accepted: --no-daemon-ok)" if no_daemon_ok else ""
    if not required:
        detail = f"an ephemeral instance runs no daemon: {NO_DAEMON}{accepted}"
        return [Check("daemon", failing, detail)], Daemons({})
    heartbeats = instance.get_daemon_heartbeats()
    if not any(daemon in heartbeats for daemon in required):
        hint = "" if no_daemon_ok else " (`make dev` or `dagster-daemon run` starts one)"
        return [Check("daemon", failing, f"{NO_DAEMON}{hint}{accepted}")], Daemons({})
    tolerance = heartbeat_tolerance()
    statuses = get_daemon_statuses(
        instance,
        required,
        curr_time_seconds=now.timestamp(),
        ignore_errors=True,
        heartbeat_tolerance_seconds=tolerance,
    )
    every = DEFAULT_HEARTBEAT_INTERVAL_SECONDS
    rule = f"one every {every} s; Dagster's tolerance: {every} s + {tolerance:.0f} s"
    late = timedelta(seconds=MISSED_BEATS_WARNING * DEFAULT_HEARTBEAT_INTERVAL_SECONDS)
    # Findings by kind, each with the daemons it is about and the oldest heartbeat among them.
    found: dict[str, list[str]] = {}
    ages: dict[str, timedelta] = {}
    evaluating: dict[str, bool] = {}
    for daemon, status in statuses.items():
        beat = status.last_heartbeat
        age = now - datetime.fromtimestamp(beat.timestamp, UTC) if beat else None
        if age is not None:
            ages[daemon] = age
        if beat is None:
            kind = "missing"
        elif not status.healthy:
            kind = "stopped"
        elif age is not None and age > late:
            kind = "late"
        elif beat.errors:
            kind = f"error: {beat.errors[0].message.strip().splitlines()[0]}"
        else:
            kind = "fresh"
        found.setdefault(kind, []).append(daemon)
        evaluating[daemon] = bool(status.healthy) and (kind != "late" or not no_daemon_ok)
    rows: list[Check] = []
    for kind, daemons in found.items():
        oldest = max((ages[d] for d in daemons if d in ages), default=None)
        name = "daemon" if len(daemons) == len(required) else f"daemon {', '.join(daemons)}"
        which = ", ".join(daemons)
        since = f"last heartbeat {duration(oldest)} ago" if oldest is not None else ""
        if kind == "fresh":
            rows.append(ok(name, f"{which}: {since}"))
        elif kind == "missing":
            rows.append(Check(name, failing, f"{which}: no heartbeat: not running{accepted}"))
        elif kind == "stopped":
            detail = f"{which}: {since}, beyond Dagster's tolerance ({rule}): stopped{accepted}"
            rows.append(Check(name, failing, detail))
        elif kind == "late":
            detail = f"{which}: {since} ({rule}): the daemon may have stopped or be stuck"
            rows.append(warn(name, detail))
        else:
            rows.append(warn(name, f"{which}: {since}, with an {kind}"))
    return rows, Daemons(evaluating)


@contextmanager
def code_location(instance: DagsterInstance) -> Iterator[RemoteRepository]:
    """The code location loaded in this process, as the daemon's would be."""
    from dagster import BetaWarning

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(executable_path=sys.executable, module_name=DEFINITIONS_MODULE),
        location_name=CODE_LOCATION,
    )
    with warnings.catch_warnings():
        # Raised by Dagster itself when Definitions binds resources to a sensor, and when it
        # snapshots a schedule (`environment_vars`); not ours.
        warnings.simplefilter("ignore", BetaWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="dagster")
        location = origin.create_location(instance)
    with location:
        yield location.get_repository(SINGLETON_REPOSITORY_NAME)


def instigator_checks(instance: DagsterInstance, daemons: Daemons, now: datetime) -> list[Check]:
    """A row per schedule and sensor: running or stopped against its default, its last
    tick, and whether it ticks as often as it should while the daemon is up."""
    try:
        with code_location(instance) as repository:
            return [
                *(_sensor(instance, sensor, daemons, now) for sensor in repository.get_sensors()),
                *(
                    _schedule(instance, schedule, daemons, now)
                    for schedule in repository.get_schedules()
                ),
            ]
    except Exception as error:  # a location that does not load runs nothing: say why
        return [
            problem("code location", f"{DEFINITIONS_MODULE} does not load: {_first_line(error)}")
        ]


def _last_tick(
    instance: DagsterInstance, origin_id: str, selector_id: str
) -> InstigatorTick | None:
    ticks = instance.get_ticks(origin_id, selector_id, limit=1)
    return ticks[0] if ticks else None


def _tick_text(tick: InstigatorTick | None, now: datetime) -> str:
    if tick is None:
        return "no tick yet"
    at = datetime.fromtimestamp(tick.timestamp, UTC)
    text = f"last tick {duration(now - at)} ago ({when(at)}) {tick.status.value.lower()}"
    if tick.status == TickStatus.SKIPPED and tick.skip_reason:
        text += f": {tick.skip_reason}"
    elif tick.status == TickStatus.SUCCESS and tick.run_ids:
        text += f": {len(tick.run_ids)} run(s) requested"
    elif tick.status == TickStatus.FAILURE and tick.error is not None:
        text += f": {tick.error.message.strip().splitlines()[0]}"
    return text


def _stopped(kind: str, name: str, expected: bool) -> Check:
    row = f"{kind} {name}"
    how = START_HINT.format(kind=kind, name=name)
    if expected:
        return problem(row, f"stopped, though it runs by default (someone stopped it): {how}")
    return warn(row, f"stopped (off by default): {how}")


def _sensor(
    instance: DagsterInstance, sensor: RemoteSensor, daemons: Daemons, now: datetime
) -> Check:
    origin_id, selector_id = sensor.get_remote_origin_id(), sensor.selector_id
    state = sensor.get_current_instigator_state(
        instance.get_instigator_state(origin_id, selector_id)
    )
    expected = sensor.default_status == DefaultSensorStatus.RUNNING
    if not state.is_running:
        return _stopped("sensor", sensor.name, expected)
    tick = _last_tick(instance, origin_id, selector_id)
    interval = timedelta(seconds=sensor.min_interval_seconds)
    detail = f"running, every {duration(interval)}; {_tick_text(tick, now)}"
    name = f"sensor {sensor.name}"
    if tick is not None and tick.status == TickStatus.FAILURE:
        return problem(name, detail)
    if not daemons.up("SENSOR"):
        return ok(name, f"{detail} (not evaluated while the sensor daemon is down)")
    stale_after = max(interval * STALE_INTERVALS, STALE_FLOOR)
    if tick is None:
        return warn(name, f"{detail}: the daemon has not evaluated it yet")
    age = now - datetime.fromtimestamp(tick.timestamp, UTC)
    if age > stale_after:
        return problem(
            name,
            f"{detail}: no tick for over {duration(stale_after)}: the daemon is not evaluating it",
        )
    return ok(name, detail)


def _schedule(
    instance: DagsterInstance, schedule: RemoteSchedule, daemons: Daemons, now: datetime
) -> Check:
    origin_id, selector_id = schedule.get_remote_origin_id(), schedule.selector_id
    stored = instance.get_instigator_state(origin_id, selector_id)
    state = schedule.get_current_instigator_state(stored)
    expected = schedule.default_status == DefaultScheduleStatus.RUNNING
    if not state.is_running:
        return _stopped("schedule", schedule.name, expected)
    tick = _last_tick(instance, origin_id, selector_id)
    upcoming = next(schedule.execution_time_iterator(now.timestamp()))
    detail = (
        f"running, cron {schedule.cron_schedule!s} ({schedule.execution_timezone or 'UTC'}); "
        f"{_tick_text(tick, now)}; next at {when(upcoming.astimezone(UTC))}"
    )
    name = f"schedule {schedule.name}"
    if tick is not None and tick.status == TickStatus.FAILURE:
        return problem(name, detail)
    if not daemons.up("SCHEDULER"):
        return ok(name, f"{detail} (not ticking while the scheduler daemon is down)")
    due = next(
        schedule.execution_time_iterator((now - SCHEDULE_GRACE).timestamp(), ascending=False)
    )
    data = state.instigator_data
    started = data.start_timestamp if isinstance(data, ScheduleInstigatorData) else None
    if started is None or started >= due.timestamp():
        return ok(name, detail)  # started after the last tick it owed
    if tick is None or tick.timestamp < due.timestamp():
        return problem(
            name,
            f"{detail}: its tick of {when(due.astimezone(UTC))} is missing: the scheduler "
            "is not ticking it",
        )
    return ok(name, detail)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__
