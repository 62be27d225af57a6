"""What a checkout's operator does: `make home`, a profile in `DAGSTER_HOME`, `dagster job
execute` in its own process, against a real sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from social_pipelines.sandbox.demo_posts import demo_posts
from social_pipelines.sandbox.process import SandboxProcess


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with SandboxProcess(db_path=tmp_path_factory.mktemp("sandbox") / "sandbox.db") as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(module_sandbox: SandboxProcess) -> SandboxProcess:
    """The module's sandbox, reset and seeded with the demo posts for each test."""
    module_sandbox.reset()
    module_sandbox.seed(demo_posts())
    return module_sandbox
