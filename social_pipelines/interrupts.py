"""Holding SIGINT and SIGTERM back while a few lines that must finish run.

A run that is told to stop (SIGTERM from a run launcher or `make dev`, Ctrl-C) raises an
interrupt wherever its code is; the deliverer then records what happened to the delivery
in hand. A second signal during that write would leave it half done, so the write runs
with the signals held: one that arrives meanwhile is delivered, to the handler it was
meant for, as soon as the write is over.

Python runs signal handlers in the main thread only (and only the main thread may swap
them); elsewhere this holds nothing back, and nothing else is needed: no interrupt is
raised there.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


def is_interrupt(error: BaseException) -> bool:
    """An interrupt, not an error: KeyboardInterrupt, SystemExit, or Dagster's
    DagsterExecutionInterruptedError (all BaseException, none Exception)."""
    return not isinstance(error, Exception) and not isinstance(error, GeneratorExit)


@contextmanager
def interrupts_held() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in INTERRUPTS}
    if any(handler is None for handler in previous.values()):
        # A handler installed outside Python cannot be put back: hold nothing.
        yield
        return
    caught: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        caught.append(signum)

    for signum in INTERRUPTS:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            signal.raise_signal(caught[0])
