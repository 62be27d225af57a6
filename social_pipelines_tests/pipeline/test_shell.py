"""The README's shell commands, run exactly as written, in a subprocess."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from social_pipelines.sandbox.process import PACKAGE_ROOT, SandboxProcess

README = PACKAGE_ROOT / "README.md"


def _readme_command(prefix: str) -> list[str]:
    [line] = [
        line.strip()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.strip().startswith(prefix)
    ]
    return shlex.split(line)


def test_the_readme_runs_one_window_from_the_shell(
    demo_sandbox: SandboxProcess,
    env: Path,
    process_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command = _readme_command(".venv/bin/dg launch ")
    partition = command[command.index("--partition") + 1]
    # env: DAGSTER_HOME is a fresh directory, the sandbox and state store are the test's.
    shutil.copy(PACKAGE_ROOT / "dagster.yaml", env / "dagster.yaml")
    # The README's executable, from the environment running these tests.
    executable = Path(sys.executable).with_name("dg")
    assert command[0] == ".venv/bin/dg" and executable.exists()

    completed = subprocess.run(
        [str(executable), *command[1:]],
        cwd=PACKAGE_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=process_env,
    )

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "Traceback" not in output
    assert "SupersessionWarning" not in output
    # The embedded dagster.yaml names its storage by {env: DAGSTER_HOME}, here too.
    monkeypatch.setenv("DAGSTER_HOME", str(env))
    with DagsterInstance.from_config(str(env)) as instance:
        [run] = instance.get_runs()
        assert run.job_name == "reply_job"
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.tags["dagster/partition"] == partition
        start = re.sub(r"-(\d\d:\d\d)$", r" \1", partition)
        messages = [event.message for event in instance.all_logs(run.run_id)]
        assert any(f"window {start}-" in message for message in messages), messages
