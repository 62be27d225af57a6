"""The UI's bind address, found from /proc: real listeners started here, one named as
dagster-webserver, one not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from social_pipelines.doctor.listeners import Listener, _address, is_dagster_ui, webserver_check
from social_pipelines.doctor.report import Status

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")

SERVER = """\
import socket, sys
family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
server = socket.socket(family, socket.SOCK_STREAM)
server.bind((sys.argv[1], 0))
server.listen()
print(server.getsockname()[1], flush=True)
sys.stdin.read()  # until the test closes it
"""


@contextmanager
def listener(tmp_path: Path, name: str, host: str) -> Iterator[tuple[int, int]]:
    """A real TCP listener on `host` in a process whose command line is `name`: its pid
    and port."""
    script = tmp_path / name
    script.write_text(SERVER)
    process = subprocess.Popen(
        [sys.executable, str(script), host],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield process.pid, port
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def test_a_webserver_listening_on_every_interface_is_a_warning(tmp_path: Path) -> None:
    with listener(tmp_path, "dagster-webserver", "0.0.0.0") as (pid, port):
        check = webserver_check()
    assert check.status == Status.WARN
    assert f"pid {pid} (dagster-webserver) on 0.0.0.0:{port}" in check.detail
    assert "no authentication" in check.detail


def test_an_ipv6_wildcard_is_beyond_loopback_too(tmp_path: Path) -> None:
    with listener(tmp_path, "dagster-webserver", "::") as (pid, port):
        check = webserver_check()
    assert check.status == Status.WARN
    assert f"pid {pid} " in check.detail and f"[::]:{port}" in check.detail


def test_a_webserver_on_loopback_is_fine_and_other_servers_are_not_its_business(
    tmp_path: Path,
) -> None:
    with (
        listener(tmp_path, "dagster-webserver", "127.0.0.1") as (pid, port),
        listener(tmp_path, "other-server", "0.0.0.0") as (other, _),
    ):
        check = webserver_check()
    assert f"pid {pid} " in check.detail and f"127.0.0.1:{port}" in check.detail
    assert f"pid {other} " not in check.detail
    if check.status == Status.WARN:  # another UI on this machine may listen widely
        assert "loopback" in check.detail
    else:
        assert check.detail.startswith("loopback only")


@pytest.mark.parametrize(
    ("argv", "ui"),
    [
        (["/venv/bin/python", "/venv/bin/dagster-webserver", "-h", "0.0.0.0"], True),
        (["/venv/bin/python", "-m", "dagster_webserver", "--port", "3000"], True),  # dagster dev
        (["/venv/bin/python", "/venv/bin/dagster", "dev", "--host", "127.0.0.1"], True),
        (["/venv/bin/python", "/venv/bin/dagster-daemon", "run"], False),
        (["/venv/bin/python", "/venv/bin/dagster", "job", "execute"], False),
    ],
)
def test_which_processes_are_a_dagster_ui(argv: list[str], ui: bool) -> None:
    assert is_dagster_ui(argv) is ui


def test_proc_addresses_are_read_in_the_kernels_order() -> None:
    assert _address("0100007F:0BB8") == ("127.0.0.1", 3000)
    assert _address("00000000:1F90") == ("0.0.0.0", 8080)
    assert _address("00000000000000000000000001000000:0050") == ("::1", 80)
    mapped, port = _address("0000000000000000FFFF00000100007F:0050")  # ::ffff:127.0.0.1
    assert Listener(1, "dagster-webserver", mapped, port).loopback_only
    assert not Listener(1, "dagster-webserver", "::", port).loopback_only
