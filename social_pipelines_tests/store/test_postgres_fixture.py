"""The PostgreSQL test helpers themselves: a fresh database per test, really dropped."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from social_pipelines.store.engine import create_engine
from social_pipelines_tests.postgres import database_url, fresh_database, list_databases

pytestmark = pytest.mark.postgres


def test_database_url_keeps_scheme_credentials_and_socket() -> None:
    url = sa.make_url(database_url("postgresql://postgres:@/postgres?host=/tmp/pg-x", "other"))
    assert (url.drivername, url.username, url.database) == ("postgresql", "postgres", "other")
    assert url.query["host"] == "/tmp/pg-x"
    assert database_url("postgresql://u:p@db:5432/main", "t") == "postgresql://u:p@db:5432/t"


def test_each_fresh_database_is_empty_distinct_and_dropped(postgres_url: str) -> None:
    with fresh_database(postgres_url) as first, fresh_database(postgres_url) as second:
        names = [sa.make_url(first).database, sa.make_url(second).database]
        assert names[0] != names[1]
        assert set(names) <= set(list_databases(postgres_url))
        engine = create_engine(first)
        held = engine.connect()  # left open on purpose: the drop must not wait for it
        held.exec_driver_sql("CREATE TABLE left_behind (x int)")
        held.commit()
        other = create_engine(second)
        try:
            assert sa.inspect(other).get_table_names() == []
        finally:
            other.dispose()
    remaining = set(list_databases(postgres_url))
    engine.dispose()
    assert not set(names) & remaining
