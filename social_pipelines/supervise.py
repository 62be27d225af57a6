"""Running `dagster dev` so that Ctrl-C and SIGTERM stop all of it.

`dagster dev` stops its webserver, daemon and code server when it gets SIGINT or SIGTERM
(it maps SIGTERM to SIGINT, then sends each service its shutdown message and waits). The
signal has to reach it, though: a SIGTERM to our process alone (a process manager, `kill`)
used to end us and leave every Dagster process running, and Ctrl-C reached it, but
`subprocess.call` then killed it at once (SIGKILL, on the KeyboardInterrupt it raised in
us), orphaning its services.

So it runs in a process group of its own (a terminal's Ctrl-C reaches only us), and the
first SIGINT or SIGTERM we get is passed on to it, once. It gets `stop_timeout` seconds to
shut down; whatever is left of its group then (a service that hung, a run worker still
going) gets SIGTERM (a run records the delivery in hand and stops) and, a few seconds
later, SIGKILL. A second signal to us kills the group at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TextIO

STOP_TIMEOUT = 30.0
# After `dagster dev` is gone: how long its group's stragglers get between SIGTERM and SIGKILL.
STRAGGLER_TIMEOUT = 10.0
# How long a SIGKILLed process may take to be gone.
KILL_WAIT = 2.0
_POLL = 0.1


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid` (zombies are gone: only not reaped yet)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether anyone is left
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def end_group(pgid: int, *, timeout: float = STRAGGLER_TIMEOUT) -> list[int]:
    """SIGTERM every process left in the group, SIGKILL what is still there after
    `timeout` seconds; the pids that had to be killed."""
    if not group_members(pgid):
        return []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(_POLL)
    left = group_members(pgid)
    if left:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(_POLL / 10)
    return left


def run_until_stopped(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    stop_timeout: float = STOP_TIMEOUT,
    straggler_timeout: float = STRAGGLER_TIMEOUT,
    out: TextIO = sys.stderr,
) -> int:
    """Run `command` in a process group of its own until it exits or we are told to stop
    (module docstring); its exit status, or 0 when we stopped it."""
    proc = subprocess.Popen(command, env=dict(env), process_group=0)  # noqa: S603 - ours
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        name = signal.Signals(signum).name
        if len(received) == 1:
            print(f"{name}: stopping Dagster (again to kill it now)", file=out, flush=True)
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        else:
            print(f"{name} again: killing Dagster", file=out, flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    deadline: float | None = None
    try:
        while True:
            try:
                code = proc.wait(timeout=_POLL)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and deadline is None:
                deadline = time.monotonic() + stop_timeout
            if deadline is not None and time.monotonic() > deadline:
                print(
                    f"Dagster did not stop within {stop_timeout:g} s: killing it",
                    file=out,
                    flush=True,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                deadline = float("inf")
    finally:
        killed = end_group(proc.pid, timeout=straggler_timeout)
        if killed:
            print(f"killed {len(killed)} process(es) left after Dagster stopped", file=out)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0 if received else code
