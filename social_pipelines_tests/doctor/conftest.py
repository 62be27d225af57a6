"""A real DAGSTER_HOME per test (the embedded dagster.yaml, storage initialised once per
module and copied), its state store beside it, settings from the environment only."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance

from social_pipelines.cli import main
from social_pipelines.settings import load_settings
from social_pipelines.store import StateStore
from social_pipelines.wiring import Wiring, wire_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def initialised_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home whose Dagster storage exists (what `make home` leaves): made once, copied."""
    home = tmp_path_factory.mktemp("template") / "home"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        with DagsterInstance.get() as instance:
            instance.get_runs_count()
    return home


@pytest.fixture
def home(initialised_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's DAGSTER_HOME, the environment as a fresh shell has it: no setting of
    ours, no stray .env, Dagster's own heartbeat tolerance."""
    copy = tmp_path / "home"
    shutil.copytree(initialised_home, copy)
    for key in list(os.environ):
        if key.startswith("SOCIAL_") or key == "DAGSTER_DAEMON_HEARTBEAT_TOLERANCE":
            monkeypatch.delenv(key)
    monkeypatch.setenv("DAGSTER_HOME", str(copy))
    monkeypatch.chdir(tmp_path)
    url = load_settings().state_store_url
    yield copy
    StateStore.close(url)


@pytest.fixture
def wiring(home: Path) -> Wiring:
    """The wiring the command builds (same store, same connector)."""
    return wire_settings(load_settings())


@pytest.fixture
def instance(home: Path) -> Iterator[DagsterInstance]:
    with DagsterInstance.get() as opened:
        yield opened


@dataclass(frozen=True)
class Result:
    code: int
    rows: dict[str, tuple[str, str]]  # name: (status, detail)
    document: dict

    def status(self, name: str) -> str:
        return self.rows[name][0]

    def detail(self, name: str) -> str:
        return self.rows[name][1]

    def named(self, status: str) -> list[str]:
        return [name for name, (found, _) in self.rows.items() if found == status]


Doctor = Callable[..., Result]


@pytest.fixture
def doctor(home: Path, capsys: pytest.CaptureFixture[str]) -> Doctor:
    """`social-pipelines doctor --json ARGS`, its exit status and rows."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(["doctor", "--json", *args])
        document = json.loads(capsys.readouterr().out)
        rows = {row["name"]: (row["status"], row["detail"]) for row in document["checks"]}
        return Result(code, rows, document)

    return run
