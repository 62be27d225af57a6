"""The Makefile's home step: it installs the embedded dagster.yaml and initialises Dagster's
storage in a new home, refreshes an earlier embedded copy, and never replaces another
profile."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from social_pipelines.partitions import last_complete_window
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines_tests.deploy.helpers import REPO, clean_env, make_home, start_reply_job

EMBEDDED = REPO / "dagster.yaml"
PRODUCTION = REPO / "deploy" / "dagster.yaml"
LONG_AGO = time.time() - 30 * 86400


def _age(path: Path) -> None:
    """Older than the checkout's copy, as a home's copy is after a `git pull`."""
    os.utime(path, (LONG_AGO, LONG_AGO))


def test_a_production_profile_in_the_home_is_never_overwritten(tmp_path: Path) -> None:
    profile = tmp_path / "dagster.yaml"
    shutil.copyfile(PRODUCTION, profile)
    _age(profile)

    done = make_home(tmp_path)

    assert done.returncode == 0, done.stderr
    assert profile.read_bytes() == PRODUCTION.read_bytes()
    assert "kept" in done.stdout and "never overwritten" in done.stdout


@pytest.mark.parametrize(
    "first_line",
    [
        EMBEDDED.read_text().splitlines()[0],
        # The embedded default's first line before it carried the marker.
        "# The embedded default: everything under $DAGSTER_HOME on SQLite, no server to run.",
    ],
    ids=["marked", "before-the-marker"],
)
def test_an_earlier_embedded_copy_is_replaced(tmp_path: Path, first_line: str) -> None:
    earlier = tmp_path / "dagster.yaml"
    earlier.write_text(f"{first_line}\nstorage:\n  sqlite:\n    base_dir: /srv/old\n")
    _age(earlier)

    done = make_home(tmp_path)

    assert done.returncode == 0, done.stderr
    assert earlier.read_bytes() == EMBEDDED.read_bytes()
    assert "updated" in done.stdout


def test_four_runs_at_once_on_a_fresh_home(
    tmp_path: Path, sandbox: SandboxProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the home step's one-time initialisation, runs started together race to create
    Dagster's SQLite tables: some crash (`table ... already exists`) and the home is left
    with two Alembic heads, refused by every command from then on."""
    home = tmp_path / "dagster_home"
    made = make_home(home)
    assert made.returncode == 0, made.stderr
    assert (home / "dagster.yaml").read_bytes() == EMBEDDED.read_bytes()

    # The embedded default in every other respect: SQLite state store under the home.
    env = clean_env(DAGSTER_HOME=str(home), SOCIAL_SANDBOX_URL=sandbox.url)
    window = last_complete_window()
    runs = [start_reply_job(window, env, cwd=home) for _ in range(4)]
    outputs = [run.communicate(timeout=180)[0] for run in runs]

    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-6000:]
    # The home still opens, with four successful runs in it.
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.from_config(str(home)) as instance:
        statuses = [run.status for run in instance.get_runs()]
    assert statuses == [DagsterRunStatus.SUCCESS] * 4
    # Four runs of one window answered each post once.
    targets = [status["in_reply_to_id"] for status in sandbox.posted()]
    assert targets and len(targets) == len(set(targets))
