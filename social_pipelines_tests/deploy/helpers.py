"""Running the Makefile's home step and `dagster job execute` as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def make_home(home: Path) -> subprocess.CompletedProcess[str]:
    """`make home` for `home`, with this interpreter's tools (the checkout's `.venv` or not),
    unaffected by the `make test` that may be running this test."""
    env = {
        key: value
        for key, value in clean_env().items()
        if key not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
    }
    return subprocess.run(
        ["make", "-s", "-C", str(REPO), "home", f"DAGSTER_HOME={home}", f"BIN={BIN}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def clean_env(**values: str) -> dict[str, str]:
    """This process's environment without any setting of ours or of a Dagster profile, plus
    `values`: what a run worker configured only by them would see."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SOCIAL_", "DAGSTER_"))
    }
    env.update(values)
    return env


def reply_job_command(partition: str) -> list[str]:
    """`dagster job execute` for one window (the CLI has no --partition; the tag works)."""
    return [
        str(BIN / "dagster"),
        "job",
        "execute",
        "-m",
        "social_pipelines.definitions",
        "-j",
        "reply_job",
        "--tags",
        json.dumps({"dagster/partition": partition}),
    ]


def start_reply_job(partition: str, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        reply_job_command(partition),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
