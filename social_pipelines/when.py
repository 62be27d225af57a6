"""When a post falls due: aware times from what people write, daylight saving included.

A naive time is ambiguous across machines and seasons, so it is refused unless a default
zone is configured (`SOCIAL_DEFAULT_TIMEZONE`). A local time that does not exist (the hour
skipped when clocks go forward) or that happens twice (the hour repeated when they go back)
is refused with both readings spelled out: guessing would publish an hour early or late.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class WhenError(ValueError):
    """A time that cannot be read, or read only by guessing; the message says why."""


def zone(name: str) -> ZoneInfo:
    """The IANA zone of that name, or a WhenError naming it."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise WhenError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from error


def parse_when(
    value: str | datetime, *, timezone: str | None = None, now: datetime | None = None
) -> datetime:
    """An aware UTC datetime from an ISO 8601 time (or `now`).

    `timezone` is the zone a time without an offset is read in; without it such a time is
    refused.
    """
    if isinstance(value, datetime):
        moment = value
    else:
        text = value.strip()
        if text.lower() == "now":
            return (now or datetime.now(UTC)).astimezone(UTC)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise WhenError(
                f"{value!r} is not a time: use ISO 8601 such as 2026-12-24T09:00:00+01:00"
                " (or 2026-12-24 09:00 with a time zone)"
            ) from error
    if moment.tzinfo is not None and moment.utcoffset() is not None:
        return moment.astimezone(UTC)
    if not timezone:
        raise WhenError(
            f"{moment.isoformat(sep=' ')} has no UTC offset: add one (such as +01:00 or Z)"
            " or set SOCIAL_DEFAULT_TIMEZONE (or the entry's timezone)"
        )
    return localize(moment, zone(timezone))


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """That wall-clock time in that zone, in UTC; refused when it does not exist or is
    ambiguous there."""
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first.astimezone(UTC)
    # Round-tripping through UTC tells a gap (the time never shows on a clock) from a fold.
    if first.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        before = (naive - timedelta(hours=1)).replace(tzinfo=tz)
        raise WhenError(
            f"{naive.isoformat(sep=' ')} does not exist in {tz.key}: clocks skip it when"
            f" daylight saving starts (UTC offset {_offset(before)} becomes"
            f" {_offset(second)}); pick another time or give the offset"
        )
    raise WhenError(
        f"{naive.isoformat(sep=' ')} happens twice in {tz.key} when daylight saving ends:"
        f" give the offset, {naive.isoformat()}{_offset(first)} (the first) or"
        f" {naive.isoformat()}{_offset(second)} (the second)"
    )


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
