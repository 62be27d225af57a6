"""A real Dagster daemon for the publishing benchmarks: a fresh `DAGSTER_HOME` with the
embedded `dagster.yaml`, `dagster-daemon run -w workspace.yaml` in its own process group,
configured only through the environment (as a user's shell would), killed with its whole
group (code server, run workers) on the way out, whatever happened."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def sandbox_accounts_file(path: Path, names: list[str]) -> dict[str, str]:
    """An accounts file with one sandbox account per name (token by variable, as the
    README's form has it); returns the variables that hold the tokens."""
    lines: list[str] = []
    variables: dict[str, str] = {}
    for name in names:
        variable = f"BENCH_TOKEN_{name.upper()}"
        lines += [
            f"[accounts.{name}]",
            'platform = "mastodon"',
            'instance_url = "${SOCIAL_SANDBOX_URL}"',
            f'token_env = "{variable}"',
            "",
        ]
        variables[variable] = f"sandbox-token-{name}"
    path.write_text("\n".join(lines), encoding="utf-8")
    return variables


def clean_env(**values: str) -> dict[str, str]:
    """This environment without any setting of ours or of a Dagster profile, plus
    `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOCIAL_", "DAGSTER_"))}
    env.update(values)
    return env


def make_home(home: Path, env: Mapping[str, str]) -> None:
    """What `make home` does: the embedded dagster.yaml, storage initialised once."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"],
        env=dict(env),
        cwd=home,
        check=True,
        capture_output=True,
        timeout=180,
    )


class Daemon:
    """`dagster-daemon run -w workspace.yaml` from the repository root."""

    def __init__(self, env: Mapping[str, str], log_path: Path) -> None:
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Daemon:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def wait_for(self, text: str, timeout: float, *, times: int = 1) -> float:
        """Wait until the daemon's log holds `text` `times` times; the monotonic time it
        was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"the daemon exited ({self.proc.returncode}):\n{self.log()[-4000:]}"
                )
            if self.log().count(text) >= times:
                return time.monotonic()
            time.sleep(0.1)
        raise RuntimeError(
            f"no {text!r} in the daemon's log within {timeout:.0f} s:\n{self.log()[-4000:]}"
        )

    def stop(self) -> None:
        """SIGTERM to the whole group (daemon, code server, run workers), SIGKILL after
        10 s to whatever is left of it."""
        proc = self.proc
        if proc is None:
            return
        self.proc = None
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and _group_alive(proc.pid):
                proc.poll()
                time.sleep(0.1)
            if not _group_alive(proc.pid):
                break
        proc.poll()
        if self._log is not None:
            self._log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


TICK = "Checking for new runs for sensor: due_posts_sensor"
# The end of a tick that found nothing due.
TICK_SKIPPED = "Sensor due_posts_sensor skipped"


def run_records(home: Path) -> list[Any]:
    """Every run of the instance in `home`, with its timestamps (create, start, end)."""
    from dagster import DagsterInstance

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        with DagsterInstance.from_config(str(home)) as instance:
            return list(instance.get_run_records())
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
