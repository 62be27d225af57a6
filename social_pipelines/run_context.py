"""Which run and step the current code runs in, for log lines that do not come through
Dagster's own log (a library logger's record written straight to the JSON log file)."""

from __future__ import annotations

import sys


def current_step() -> dict[str, str] | None:
    """`{"run_id", "job", "step"}` inside an op's body, else None.

    Cheap outside Dagster: a process that never imported dagster runs no step, and this
    does not import it."""
    if "dagster" not in sys.modules:
        return None
    from dagster import DagsterInvariantViolationError, OpExecutionContext

    try:
        context = OpExecutionContext.get()
    except DagsterInvariantViolationError:
        return None
    return {
        "run_id": context.run_id,
        "job": context.job_name,
        "step": context.get_step_execution_context().step.key,
    }
