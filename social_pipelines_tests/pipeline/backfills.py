"""`dagster job backfill` as the README has it, and the daemon's run queue driven in the test.

The CLI submits a backfill's runs to the instance's queue and ends; a daemon's
`QueuedRunCoordinatorDaemon` would start them, each in a run worker of its own. Here the
test runs that daemon's iterations itself, synchronously, on the same `DAGSTER_HOME` and the
same workspace, with Dagster's in-memory launcher in place of the run workers: the queue,
its tag limits and the code location lookup are the daemon's own, and the runs execute in
this process (about a second each, against seconds for a worker and for a daemon to
start).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.instance.ref import InstanceRef
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.sync_in_memory_run_launcher import SyncInMemoryRunLauncher
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    ManagedGrpcPythonEnvCodeLocationOrigin,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load import location_origins_from_yaml_paths
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKSPACE = REPO / "workspace.yaml"
DEFINITIONS = "social_pipelines.definitions"


class WorkspaceCheckingInMemoryLauncher(SyncInMemoryRunLauncher):
    """Dagster's synchronous in-memory launcher, after the lookup the daemon's default
    launcher makes first: the run's code location must be in the daemon's workspace. A run
    submitted under another location name (`dagster job backfill -m ...` names it after the
    module) is never started by a real daemon, and so not here either."""

    def launch_run(self, context: LaunchRunContext) -> None:
        origin = context.dagster_run.remote_job_origin
        if origin is not None and context.workspace is not None:
            context.workspace.get_code_location(origin.location_name)
        super().launch_run(context)


def backfill(
    args: list[str], env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`dagster job backfill -w workspace.yaml -j reply_job ARGS --noprompt` from the
    checkout, as a user's shell runs it; fails the test with its output when it fails."""
    command = [
        str(BIN / "dagster"),
        "job",
        "backfill",
        "-w",
        "workspace.yaml",
        "-j",
        "reply_job",
        *args,
        "--noprompt",
    ]
    done = subprocess.run(
        command,
        cwd=REPO,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def backfill_id(output: str) -> str:
    """The id the CLI printed: "Launched backfill job `ID`"."""
    found = re.search(r"Launched backfill job `([^`]+)`", output)
    assert found, f"no backfill launched:\n{output}"
    return found.group(1)


@dataclass
class RunQueue:
    """The instance of a `DAGSTER_HOME` and the daemon's workspace, to drain its queue."""

    instance: DagsterInstance
    workspace: WorkspaceProcessContext

    def queued(self) -> list[DagsterRun]:
        return list(self.instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.QUEUED])))

    def drain(self, *, timeout: float = 60) -> None:
        """Run the queue daemon's iterations until nothing is queued. Each iteration starts
        what the queue's limits allow (one reply run at a time), and those runs finish
        inside it."""
        daemon = QueuedRunCoordinatorDaemon(interval_seconds=1)
        deadline = time.monotonic() + timeout
        try:
            while self.queued():
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"runs still queued after {timeout:.0f} s: "
                        f"{[run.run_id for run in self.queued()]}"
                    )
                list(daemon.run_iteration(self.workspace))
        finally:
            daemon.__exit__(None, None, None)

    def runs_of_backfill(self, backfill_id: str) -> list[DagsterRun]:
        """The backfill's runs, oldest first."""
        runs = self.instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
        return sorted(runs, key=lambda run: run.tags["dagster/partition"])


@contextmanager
def run_queue(home: Path) -> Iterator[RunQueue]:
    """The instance in `home` (its own dagster.yaml, but for the launcher; its storage
    initialised here, before any CLI opens it, as `make home` does) and the code locations
    of the daemon's `workspace.yaml`, under the names it gives them.

    The locations load in this process (a code server would only cost seconds), from the
    settings in this process's environment: the caller sets them as the CLI's shell has
    them. The copy of the code location the test session imported before is put back
    afterwards."""
    earlier = sys.modules.pop(DEFINITIONS, None)
    _forget_reconstructed_jobs()
    ref = InstanceRef.from_dir(
        str(home),
        overrides={
            "run_launcher": {
                "module": __name__,
                "class": WorkspaceCheckingInMemoryLauncher.__name__,
            }
        },
    )
    try:
        with (
            DagsterInstance.from_ref(ref) as instance,
            WorkspaceProcessContext(
                instance, InProcessWorkspaceLoadTarget(_daemon_locations())
            ) as workspace,
        ):
            yield RunQueue(instance=instance, workspace=workspace)
    finally:
        _forget_reconstructed_jobs()
        if earlier is None:
            sys.modules.pop(DEFINITIONS, None)
        else:
            sys.modules[DEFINITIONS] = earlier


def _daemon_locations() -> list[InProcessCodeLocationOrigin]:
    """`workspace.yaml` as Dagster reads it for the daemon, each location in process."""
    origins: list[InProcessCodeLocationOrigin] = []
    for origin in location_origins_from_yaml_paths([str(WORKSPACE)]):
        assert isinstance(origin, ManagedGrpcPythonEnvCodeLocationOrigin), origin
        origins.append(
            InProcessCodeLocationOrigin(
                origin.loadable_target_origin, location_name=origin.location_name
            )
        )
    return origins


def _forget_reconstructed_jobs() -> None:
    """Dagster keeps the last reconstructed job definition process-wide: never one built
    with another test's settings."""
    ReconstructableJob.get_definition.cache_clear()
    ReconstructableJob.get_repository_definition.cache_clear()


def step_metadata(instance: DagsterInstance, run_id: str, step_key: str) -> dict[str, Any]:
    """The plain values of a step's output metadata in a stored run."""
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is not None and event.step_key == step_key and event.is_successful_output:
            metadata = event.step_output_data.metadata
            return {key: value.value for key, value in metadata.items()}
    raise AssertionError(f"no output of {step_key} in run {run_id}")


def warnings(instance: DagsterInstance, run_id: str) -> list[str]:
    """The run's log lines at WARNING and above."""
    return [
        entry.message
        for entry in instance.all_logs(run_id)
        if isinstance(entry.level, int) and entry.level >= logging.WARNING
    ]
