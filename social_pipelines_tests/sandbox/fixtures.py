"""Sandbox fixtures, importable by any conftest: `from social_pipelines_tests.sandbox.fixtures
import sandbox, sandbox_server`.

One server per test session (starting one costs about a second); `sandbox` resets it before
each test, so every test starts from the built-in accounts and nothing else.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from social_pipelines.sandbox.process import SandboxProcess


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    db = Path(tmp_path_factory.mktemp("sandbox")) / "sandbox.db"
    with SandboxProcess(db) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxProcess) -> SandboxProcess:
    if not sandbox_server.running:  # a test killed it
        sandbox_server.start()
    sandbox_server.reset()
    return sandbox_server


def png_bytes(width: int = 3, height: int = 2) -> bytes:
    """A valid grey PNG of the given size, built with the standard library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
