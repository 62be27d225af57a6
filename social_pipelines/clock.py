"""The clock every layer that stores times reads: the ledger, breakers, rate limits.

One injectable callable instead of `datetime.now` scattered about, so that a test moves
time by hand and every stored time is an aware UTC datetime (the store refuses naive ones).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)
