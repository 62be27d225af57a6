"""Running the real reply job, in process, against a real sandbox on loopback.

Every test configures the code location the way `definitions.py` does: a `Settings`
object, from which the resources are built; nothing here edits the environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, instance_for_test

from social_pipelines.sandbox.demo_posts import demo_posts
from social_pipelines.sandbox.process import SandboxProcess
from social_pipelines.settings import Settings

MakeSettings = Callable[..., Settings]


@pytest.fixture(scope="module")
def demo_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(db_path=tmp_path_factory.mktemp("sandbox") / "sandbox.db") as sandbox:
        yield sandbox


@pytest.fixture
def env(demo_sandbox: SandboxProcess, tmp_path: Path) -> Path:
    """A fresh sandbox state and a directory for this test's state store and files."""
    demo_sandbox.reset()
    demo_sandbox.seed(demo_posts())
    return tmp_path


@pytest.fixture
def make_settings(env: Path, demo_sandbox: SandboxProcess) -> MakeSettings:
    """Settings for this test's sandbox and state store, with any field changed."""

    def make(**changes: Any) -> Settings:
        return Settings(
            _env_file=None,
            dagster_home=env,
            sandbox_url=demo_sandbox.url,
            database_url=f"sqlite:///{env / 'state.db'}",
            **changes,
        )

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
def instance(env: Path) -> Iterator[DagsterInstance]:
    with instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def process_env(settings: Settings) -> dict[str, str]:
    """The environment a separate process (the dagster CLI, `dg`) needs to load the code
    location with these settings: what a user's shell would export."""
    import os

    return {
        **os.environ,
        "DAGSTER_HOME": str(settings.dagster_home),
        "SOCIAL_SANDBOX_URL": settings.sandbox_url,
        "SOCIAL_DATABASE_URL": settings.state_store_url,
    }
