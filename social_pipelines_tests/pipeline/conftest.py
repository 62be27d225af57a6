"""Running the real reply job, in process, against a real sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, instance_for_test

from social_pipelines.sandbox.demo_posts import demo_posts
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import get_settings


@pytest.fixture(scope="module")
def demo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(db_path=tmp_path_factory.mktemp("sandbox") / "sandbox.db") as sandbox:
        yield sandbox


@pytest.fixture
def env(
    demo_sandbox: SandboxProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """A fresh sandbox state, state store and Dagster home for each test."""
    demo_sandbox.reset()
    demo_sandbox.seed(demo_posts())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("SOCIAL_SANDBOX_URL", demo_sandbox.url)
    monkeypatch.setenv("SOCIAL_DATABASE_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.delenv("SOCIAL_CAMPAIGNS_FILE", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def instance(env: Path) -> Iterator[DagsterInstance]:
    with instance_for_test() as test_instance:
        yield test_instance
