"""doctor against a real `dagster-daemon run` on the test's home: the heartbeats and the
sensors' ticks it reports are the daemon's own, and a daemon stopped is told apart from a
daemon running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance

from social_pipelines.doctor.instance import code_location
from social_pipelines_tests.doctor.conftest import REPO, Doctor

BIN = Path(sys.executable).parent
SENSORS = ("deferred_deliveries_sensor", "due_posts_sensor", "release_failed_run_claims")


@contextmanager
def daemon(home: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run -w workspace.yaml` from the checkout, in its own process group,
    configured by the environment alone; the whole group is stopped on the way out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOCIAL_", "DAGSTER_"))}
    env["DAGSTER_HOME"] = str(home)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def _ticked(instance: DagsterInstance, sensors: list[tuple[str, str]]) -> bool:
    """Every required daemon has heartbeat and every sensor (origin, selector) has a tick."""
    heartbeats = instance.get_daemon_heartbeats()
    if not all(d in heartbeats for d in instance.get_required_daemon_types()):
        return False
    return all(instance.get_ticks(origin, selector, limit=1) for origin, selector in sensors)


def test_a_running_daemon_is_proved_by_its_heartbeats_and_the_sensors_ticks(
    doctor: Doctor, home: Path, instance: DagsterInstance, tmp_path: Path
) -> None:
    log = tmp_path / "daemon.log"
    with code_location(instance) as repository:
        sensors = [
            (sensor.get_remote_origin_id(), sensor.selector_id)
            for sensor in map(repository.get_sensor, SENSORS)
        ]
    with daemon(home, log) as process:
        deadline = time.monotonic() + 60
        while not _ticked(instance, sensors):
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        found = doctor()
    assert found.code == 0, found.rows
    assert found.status("daemon") == "ok"
    for name in SENSORS:
        assert found.status(f"sensor {name}") == "ok"
        assert "last tick " in found.detail(f"sensor {name}")
    assert "skipped: nothing due" in found.detail("sensor deferred_deliveries_sensor")
