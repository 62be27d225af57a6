"""The alert tests: a state store per test on each backend, a clock the test moves, and
a real webhook receiver on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from social_pipelines.store.state import StateStore
from social_pipelines_tests.store.helpers import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[StateStore]:
    opened = StateStore(store_url, clock=clock)
    yield opened
    opened.dispose()
