"""Running the Makefile's home step and `dagster job execute` as separate processes, and
the production profile's databases on the test server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from social_pipelines.store.engine import normalise_url
from social_pipelines_tests.postgres import fresh_database, loopback_tcp

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


PROFILE = REPO / "deploy" / "dagster.yaml"


def install_profile(home: Path) -> Path:
    """deploy/dagster.yaml as shipped, installed in `home` (created if need be)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROFILE, home / "dagster.yaml")
    return home


@dataclass(frozen=True)
class Production:
    """Dagster's database and the state store's on one PostgreSQL server, and the variables
    deploy/dagster.yaml and the state store read to reach them over TCP."""

    dagster_db: str
    state_db: str
    variables: dict[str, str]

    def env(self, home: Path, **values: str) -> dict[str, str]:
        """What a process of the deployment configured only by its environment sees, with
        `home` as its DAGSTER_HOME."""
        return clean_env(DAGSTER_HOME=str(home), **self.variables, **values)


@contextmanager
def production_databases(postgres_url: str) -> Iterator[Production]:
    """Two fresh databases on the server (Dagster's and the state store's), reached over TCP
    on 127.0.0.1 the way the profile documents; dropped afterwards."""
    server = make_url(postgres_url)
    user = server.username or "postgres"
    # The embedded server trusts local connections; a real one checks this.
    password = server.password or "unused-by-trust-auth"
    with (
        fresh_database(postgres_url) as dagster_db,
        fresh_database(postgres_url) as state_db,
        loopback_tcp(postgres_url) as (host, port),
    ):
        state_name = make_url(state_db).database
        yield Production(
            dagster_db=dagster_db,
            state_db=state_db,
            variables={
                "DAGSTER_PG_HOST": host,
                "DAGSTER_PG_PORT": str(port),
                "DAGSTER_PG_DB": str(make_url(dagster_db).database),
                "DAGSTER_PG_USER": user,
                "DAGSTER_PG_PASSWORD": password,
                "SOCIAL_DATABASE_URL": f"postgresql://{user}:{password}@{host}:{port}/{state_name}",
            },
        )


def scalars(url: str, query: str) -> list:
    """One column of a query's rows, on a database of the test server."""
    engine = sa.create_engine(normalise_url(url), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return list(connection.execute(sa.text(query)).scalars())
    finally:
        engine.dispose()
