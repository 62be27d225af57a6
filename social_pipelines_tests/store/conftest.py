"""A state store per test on each backend (`store_url`), with a clock the test controls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from social_pipelines.store.ledger import Ledger
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


@pytest.fixture
def ledger(store: StateStore) -> Ledger:
    return store.ledger
