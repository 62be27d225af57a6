"""What the resilience layer asks of a logger: Dagster's `context.log` and a stdlib
`logging.Logger` both fit, so the core reports into a run's log without importing dagster."""

from __future__ import annotations

from typing import Protocol


class Log(Protocol):
    def info(self, msg: str, /) -> object: ...

    def warning(self, msg: str, /) -> object: ...
