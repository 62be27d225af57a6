"""`run_until_stopped` when what it runs does not stop as asked (`test_dev_shutdown.py`
shows `dagster dev` stopping as asked): it is killed, and nothing of its group is left."""

from __future__ import annotations

import io
import os
import signal
import sys
import textwrap
import threading
from pathlib import Path

from social_pipelines.supervise import run_until_stopped


def sigterm_to_us_in(seconds: float) -> None:
    """What a process manager does to `social-pipelines dev`."""
    threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGTERM)).start()


def python(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_a_command_that_ignores_the_signal_is_killed_after_the_timeout() -> None:
    out = io.StringIO()
    stubborn = python(
        """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    sigterm_to_us_in(0.5)
    assert run_until_stopped(stubborn, env=os.environ, stop_timeout=0.5, out=out) == 0
    assert "SIGTERM: stopping Dagster" in out.getvalue()
    assert "did not stop within 0.5 s: killing it" in out.getvalue()


def test_what_the_command_leaves_behind_in_its_group_is_ended(tmp_path: Path) -> None:
    """It stops as asked, but a child of its own (a run worker, say) ignores SIGTERM."""
    pid_file = tmp_path / "straggler.pid"
    leaves_a_child = python(
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(child.pid))
        time.sleep(60)
        """
    )
    out = io.StringIO()
    sigterm_to_us_in(1.0)
    code = run_until_stopped(
        leaves_a_child, env=os.environ, stop_timeout=5, straggler_timeout=0.5, out=out
    )
    assert code == 0
    straggler = int(pid_file.read_text())
    assert "killed 1 process(es) left after Dagster stopped" in out.getvalue()
    assert not Path(f"/proc/{straggler}").exists() or "Z" in _state(straggler)


def _state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()[0]
