"""`social-pipelines dev` (what `make dev` runs) stops everything it started: the
webserver, the daemon, the code server and the sandbox, on Ctrl-C (SIGINT to the
terminal's foreground process group) and on SIGTERM to its own process alone.

A real `social-pipelines dev` in a session of its own, on free ports and a temporary
DAGSTER_HOME; once the webserver answers and every Dagster service is up, the signal; then
no process of that session may be left, and its ports are free again. Each case takes
about 10 s on an idle 2-core machine (30 s under load), nearly all of it Dagster starting.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from dagster import DagsterInstance

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMAND = str(Path(sys.executable).with_name("social-pipelines"))
# What `dagster dev` starts, as their command lines say.
SERVICES = {
    "webserver": "dagster_webserver",
    "daemon": "dagster._daemon",
    "code server": "code-server",
}
STOPPED_WITHIN = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Nothing listens there: a server started now could bind it (as servers do, with
    SO_REUSEADDR, past the closed connections' TIME_WAIT)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def session_processes(sid: int) -> dict[int, str]:
    """Live processes of session `sid` (zombies excluded), with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            found[int(entry.name)] = command
    return found


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class Dev:
    def __init__(self, home: Path) -> None:
        self.ui_port, self.sandbox_port = free_port(), free_port()
        self.log = home.parent / "dev.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SOCIAL_", "DAGSTER_"))}
        env |= {
            "DAGSTER_HOME": str(home),
            "SOCIAL_SANDBOX_URL": f"http://127.0.0.1:{self.sandbox_port}",
            "SOCIAL_DATABASE_URL": f"sqlite:///{home / 'social_state.db'}",
            "PYTHONUNBUFFERED": "1",
        }
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [COMMAND, "dev", "--host", "127.0.0.1", "--port", str(self.ui_port)],
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session, as a terminal would give it
            )

    def up(self) -> bool:
        running = " ".join(session_processes(self.proc.pid).values())
        return answers(f"http://127.0.0.1:{self.ui_port}/server_info") and all(
            service in running for service in SERVICES.values()
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Dev]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    # Created once before the services start, as `make` does for a new home.
    with monkeypatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        DagsterInstance.get().dispose()
    started = Dev(home)
    yield started
    for pid in session_processes(started.proc.pid):  # never leave anything behind
        os.kill(pid, signal.SIGKILL)
    started.proc.wait()


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("sigterm", id="SIGTERM to its process alone"),
        pytest.param("ctrl-c", id="Ctrl-C: SIGINT to the foreground group"),
    ],
)
def test_make_dev_stops_every_process_it_started(dev: Dev, how: str) -> None:
    assert wait_for(dev.up, timeout=150), "never came up:\n" + dev.output()
    before = session_processes(dev.proc.pid)
    assert len(before) >= 5, before  # us, the sandbox, dagster dev and its three services
    assert any(f"--port {dev.sandbox_port}" in command for command in before.values())

    stopped_at = time.monotonic()
    if how == "sigterm":
        os.kill(dev.proc.pid, signal.SIGTERM)
    else:
        os.killpg(dev.proc.pid, signal.SIGINT)
    assert dev.proc.wait(timeout=STOPPED_WITHIN) == 0, dev.output()
    assert wait_for(lambda: not session_processes(dev.proc.pid), timeout=5), (
        f"left running: {session_processes(dev.proc.pid)}\n{dev.output()}"
    )
    took = time.monotonic() - stopped_at
    assert took < STOPPED_WITHIN
    assert port_is_free(dev.ui_port) and port_is_free(dev.sandbox_port)
    assert "stopped: Dagster and the sandbox" in dev.output()
    assert "killed" not in dev.output(), "Dagster had to be killed instead of stopping"
