"""A failed run as an alert: which job, partition and steps, which error class and why.

Plain data in, an `Alert` out; the run-failure sensor (`alert_sensors.py`) reads the run
and its step failures from Dagster and hands them here as `ErrorFacts`, so the rules for
naming an error live in one place without Dagster:

- the class our own ops put in a failure's metadata (`error_class`), else the class a
  stored `error_kind` names: the taxonomy's name (`Transient`, `Rejected`, `ConfigError`);
- else the first class of the taxonomy in the error's chain (its cause, its context);
- else the user code's own exception (a `ValueError` Dagster wrapped in its step error);
- else Dagster's error class (`DagsterExecutionInterruptedError`, ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from social_pipelines.alerts.model import Alert, AlertKind, FailedStep, Severity
from social_pipelines.errors import error_class_for_kind, summarize, taxonomy_names

REASON_LIMIT = 300
# Dagster's step-error wrapper: the user's exception is its cause.
_WRAPPERS = frozenset({"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"})


@dataclass(frozen=True)
class ErrorLink:
    """One error of a chain as Dagster serialised it: its class name and message."""

    cls_name: str
    message: str


@dataclass(frozen=True)
class ErrorFacts:
    """What a failure says about its error: the chain (outermost first), a `Failure`'s own
    description and the metadata our ops attach (`error_class`, `error_kind`)."""

    chain: tuple[ErrorLink, ...] = ()
    description: str | None = None
    error_class: str | None = None
    error_kind: str | None = None
    # What a posting step's failure lists (`reasons`: one line per dead or unsettled
    # delivery): the first one is told, so the alert says why, not only how many.
    reasons: tuple[str, ...] = ()

    def class_name(self) -> str:
        if self.error_class:
            return self.error_class
        if self.error_kind and (named := error_class_for_kind(self.error_kind)):
            return named
        ours = taxonomy_names()
        for link in self.chain:
            if link.cls_name in ours:
                return link.cls_name
        if len(self.chain) > 1 and self.chain[0].cls_name in _WRAPPERS:
            return self.chain[1].cls_name
        return self.chain[0].cls_name if self.chain else "unknown"

    def reason(self) -> str:
        """The failure's reason in one line: a `Failure`'s description, else the message
        of the error that names the class (without its `module.Class:` prefix)."""
        if self.description:
            more = f" (+{len(self.reasons) - 1} more)" if len(self.reasons) > 1 else ""
            first = f"; {self.reasons[0]}{more}" if self.reasons else ""
            return _line(self.description + first)
        if not self.chain:
            return "no error was recorded"
        link = self.chain[0]
        if len(self.chain) > 1 and link.cls_name in _WRAPPERS:
            link = self.chain[1]
        return _line(_without_class(link))


@dataclass(frozen=True)
class RunFailure:
    job: str
    run_id: str
    occurred_at: datetime
    partition: str | None = None
    # (step key, what its failure says), in the order the steps failed.
    steps: Sequence[tuple[str, ErrorFacts]] = ()
    # The run's own failure: what is reported when no step failed (a run that could not
    # start, one run monitoring marked failed, one cancelled).
    run_error: ErrorFacts = field(default_factory=ErrorFacts)
    run_message: str = ""


def run_failed_key(run_id: str) -> str:
    return f"run_failed:{run_id}"


def run_failed_alert(failure: RunFailure) -> Alert:
    """One alert per failed run, keyed by its id."""
    steps = tuple(
        FailedStep(step=key, error_class=facts.class_name(), reason=facts.reason())
        for key, facts in failure.steps
    )
    if steps:
        first = steps[0]
        error_class, reason = first.error_class, first.reason
        where = f"at {first.step}" + (f" (+{len(steps) - 1} more)" if len(steps) > 1 else "")
    else:
        error_class = failure.run_error.class_name() if failure.run_error.chain else "RunFailure"
        reason = (
            failure.run_error.reason()
            if failure.run_error.chain or failure.run_error.description
            else _line(failure.run_message or "the run failed")
        )
        where = "before any step failed"
    partition = f" [{failure.partition}]" if failure.partition else ""
    return Alert(
        key=run_failed_key(failure.run_id),
        kind=AlertKind.RUN_FAILED,
        severity=Severity.ERROR,
        title=f"{failure.job}{partition} failed {where}: {error_class}",
        reason=reason,
        occurred_at=failure.occurred_at,
        job=failure.job,
        run_id=failure.run_id,
        partition=failure.partition,
        failed_steps=steps,
        error_class=error_class,
    )


def _without_class(link: ErrorLink) -> str:
    """A serialised error's message without its `module.Class: ` lead, as Python's
    traceback writes it: "dagster._core.definitions.events.Failure: why" -> "why"."""
    lead = re.compile(rf"^\s*(?:[\w.]+\.)?{re.escape(link.cls_name)}:\s*")
    return lead.sub("", link.message, count=1)


def _line(text: str) -> str:
    return summarize(text, REASON_LIMIT) or text.strip()[:REASON_LIMIT]
