"""Whether a Dagster UI on this machine listens beyond loopback.

The UI and its GraphQL API have no authentication of their own: whoever reaches them can
launch runs that post. Everything binds to 127.0.0.1 by default; this finds the
dagster-webserver processes (`dagster-webserver`, or the `python -m dagster_webserver`
that `dagster dev` starts) and the TCP sockets they listen on, from Linux's /proc: the
LISTEN rows of /proc/net/tcp and tcp6, matched to each process by the socket inodes
behind /proc/PID/fd. Elsewhere it cannot tell, and says so. Plain Python, no Dagster.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from social_pipelines.doctor.report import Check, ok, warn

PROC = Path("/proc")
_LISTEN = "0A"  # the state column of /proc/net/tcp for a listening socket
NAME = "webserver"


@dataclass(frozen=True)
class Listener:
    pid: int
    command: str
    address: str
    port: int

    @property
    def loopback_only(self) -> bool:
        address = ipaddress.ip_address(self.address)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return address.ipv4_mapped.is_loopback
        return address.is_loopback

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"pid {self.pid} ({self.command}) on {host}:{self.port}"


def _address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp's `ADDR:PORT` in hex: the address as 32-bit words in the machine's
    byte order, the port as a number."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(raw)), int(port, 16)


def listening_sockets(proc: Path = PROC) -> dict[int, tuple[str, int]]:
    """Every listening TCP socket of this network namespace, by inode."""
    found: dict[int, tuple[str, int]] = {}
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == _LISTEN:
                found[int(fields[9])] = _address(fields[1])
    return found


def is_dagster_ui(argv: list[str]) -> bool:
    """`dagster-webserver ...`, `python -m dagster_webserver ...` (what `dagster dev`
    runs), or `dagster dev` / `dg dev` themselves."""
    names = [os.path.basename(arg) for arg in argv]
    if "dagster-webserver" in names:
        return True
    if any(a == "-m" and b == "dagster_webserver" for a, b in itertools.pairwise(argv)):
        return True
    return any(
        name in ("dagster", "dg") and nxt == "dev"
        for name, nxt in zip(names, argv[1:], strict=False)
    )


def _program(argv: list[str]) -> str:
    """The program a command line runs, without its arguments (they are not ours to show):
    `dagster-webserver`, `python -m dagster_webserver`, `dagster dev`."""
    names = [os.path.basename(arg) for arg in argv]
    if "-m" in argv[1:2] and len(argv) > 2:
        return f"{names[0]} -m {argv[2]}"
    if names[0].startswith("python") and len(names) > 1:
        names = names[1:]
    return " ".join(names[:2]) if names[1:2] == ["dev"] else names[0]


def _processes(proc: Path) -> Iterable[tuple[int, list[str]]]:
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # gone, or not ours to read
        argv = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        if argv:
            yield int(entry.name), argv


def _socket_inodes(proc: Path, pid: int) -> set[int] | None:
    """The socket inodes a process holds; None when its descriptors cannot be read."""
    inodes: set[int] = set()
    try:
        descriptors = list((proc / str(pid) / "fd").iterdir())
    except OSError:
        return None
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def ui_listeners(proc: Path = PROC) -> tuple[list[Listener], list[int]]:
    """Where this machine's Dagster UI processes listen, and the UI processes whose
    sockets could not be read (another user's, without root)."""
    sockets = listening_sockets(proc)
    found: list[Listener] = []
    unreadable: list[int] = []
    for pid, argv in _processes(proc):
        if not is_dagster_ui(argv):
            continue
        inodes = _socket_inodes(proc, pid)
        if inodes is None:
            unreadable.append(pid)
            continue
        command = _program(argv)
        for inode in sorted(inodes & sockets.keys()):
            address, port = sockets[inode]
            found.append(Listener(pid, command, address, port))
    return found, unreadable


def webserver_check(proc: Path = PROC) -> Check:
    """A warning naming each Dagster UI that listens beyond loopback."""
    if not (proc / "net" / "tcp").exists():
        return ok(NAME, "cannot tell on this system (no /proc/net/tcp): check the UI's --host")
    listeners, unreadable = ui_listeners(proc)
    exposed = [listener for listener in listeners if not listener.loopback_only]
    unseen = (
        f"; cannot read the sockets of pid {', '.join(map(str, unreadable))} (another user's)"
        if unreadable
        else ""
    )
    if exposed:
        return warn(
            NAME,
            "listening beyond loopback: "
            + "; ".join(map(str, exposed))
            + ". The UI and its GraphQL API have no authentication: anyone who reaches them "
            "can launch runs that post. Bind it to 127.0.0.1 and put an authenticating proxy "
            "in front (README, Production)" + unseen,
        )
    if listeners:
        return ok(NAME, "loopback only: " + "; ".join(map(str, listeners)) + unseen)
    return ok(NAME, "no Dagster UI listens on this machine" + unseen)
