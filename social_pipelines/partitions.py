"""The reply job's two-hour windows (UTC), the unit of scheduling and of backfills."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import TimeWindowPartitionsDefinition

WINDOW_CRON = "0 */2 * * *"

reply_windows = TimeWindowPartitionsDefinition(
    cron_schedule=WINDOW_CRON,
    start=datetime(2026, 1, 1),
    fmt="%Y-%m-%d-%H:%M",
    timezone="UTC",
)


def last_complete_window(now: datetime | None = None) -> str | None:
    """Key of the most recent window that has ended by `now` (default: the real now)."""
    now = now or datetime.now(UTC)
    current = reply_windows.time_window_for_partition_key(
        reply_windows.get_partition_key_for_timestamp(now.timestamp())
    )
    previous = reply_windows.get_prev_partition_window(current.start)
    if previous is None:
        return None
    return previous.start.astimezone(UTC).strftime(reply_windows.fmt)
