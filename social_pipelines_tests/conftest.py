"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from social_pipelines_tests.postgres import PostgresUnavailable, fresh_database, postgres_server
from social_pipelines_tests.webhook_receiver import WebhookReceiver

# -- state store backends: SQLite and a real PostgreSQL ---------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server for the whole session: `SOCIAL_TEST_POSTGRES_URL` when set,
    else an embedded server started here and stopped at the end. Tests never write to it
    directly: `postgres_db_url` gives each one its own database on it."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(postgres_server())
        except PostgresUnavailable as error:
            # The embedded server comes with the test extra: its absence is a broken
            # install, not a reason to pass without testing PostgreSQL.
            pytest.fail(str(error))
        yield url


@pytest.fixture
def postgres_db_url(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    with fresh_database(postgres_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state store URL on each backend: a SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_db_url")


# -- a webhook receiver on loopback (the alert sinks' far end) ---------------------------


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP receiver on 127.0.0.1 that records every alert posted to it."""
    with WebhookReceiver() as running:
        yield running


# -- the chaos tests run one after another, beside the rest ------------------------------


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`make test` runs the suite in worker processes (pytest-xdist, `--dist loadgroup`):
    the chaos tests go to one worker, one after another (they start processes of their own
    and count rate-limit violations across them), while the other workers take the rest.
    They mostly wait (kills, leases, settle times), so sharing the cores costs them little,
    and a limit that held only on an idle machine would be no limit."""
    for item in items:
        if item.get_closest_marker("chaos") is not None:
            item.add_marker(pytest.mark.xdist_group("chaos"))
