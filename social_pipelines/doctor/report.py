"""The doctor's rows and how they are shown: an aligned table, or one JSON document."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"  # worth a look; does not fail the command
    PROBLEM = "problem"  # something is not working, or will not: exit status 1


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def warn(name: str, detail: str) -> Check:
    return Check(name, Status.WARN, detail)


def problem(name: str, detail: str) -> Check:
    return Check(name, Status.PROBLEM, detail)


def exit_status(checks: Iterable[Check]) -> int:
    """1 when any check is a problem, else 0: warnings do not fail."""
    return 1 if any(check.status == Status.PROBLEM for check in checks) else 0


def summary(checks: Sequence[Check]) -> dict[str, int]:
    return {str(status): sum(c.status == status for c in checks) for status in Status}


def as_json(checks: Sequence[Check]) -> str:
    document = {
        "checks": [{"name": c.name, "status": str(c.status), "detail": c.detail} for c in checks],
        "summary": {**summary(checks), "exit_status": exit_status(checks)},
    }
    return json.dumps(document, indent=2)


def as_table(checks: Sequence[Check]) -> str:
    """Status and name in aligned columns, the detail after them; then the totals."""
    status_width = max(len(str(status)) for status in Status)
    name_width = max((len(c.name) for c in checks), default=0)
    lines = [
        f"{c.status!s:<{status_width}}  {c.name:<{name_width}}  {c.detail}".rstrip() for c in checks
    ]
    totals = summary(checks)
    lines.append(f"{totals['problem']} problem(s), {totals['warn']} warning(s), {totals['ok']} ok")
    return "\n".join(lines)


def when(moment: datetime) -> str:
    """A stored time as the rows show it."""
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def duration(span: timedelta) -> str:
    """A duration as a person says it: 12 s, 4 min, 3.5 h, 2 d."""
    seconds = abs(span.total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"
