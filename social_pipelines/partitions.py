"""The reply job's two-hour windows (UTC), the unit of scheduling and of backfills."""

from __future__ import annotations

from datetime import datetime

from dagster import TimeWindowPartitionsDefinition

WINDOW_CRON = "0 */2 * * *"

reply_windows = TimeWindowPartitionsDefinition(
    cron_schedule=WINDOW_CRON,
    start=datetime(2026, 1, 1),
    fmt="%Y-%m-%d-%H:%M",
    timezone="UTC",
)


def last_complete_window(now: datetime | None = None) -> str:
    """Key of the most recent window that has ended."""
    key = reply_windows.get_last_partition_key(current_time=now)
    if key is None:
        raise RuntimeError("no reply window has ended yet")
    return key
