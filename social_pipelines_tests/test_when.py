"""Post times: offsets, zones, `now`, and daylight saving's gaps and folds refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from social_pipelines.when import WhenError, parse_when, zone


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-24T09:00:00+01:00", datetime(2026, 12, 24, 8, tzinfo=UTC)),
        ("2026-12-24T09:00:00Z", datetime(2026, 12, 24, 9, tzinfo=UTC)),
        ("2026-12-24 09:00-05:00", datetime(2026, 12, 24, 14, tzinfo=UTC)),
        ("  2026-07-01T12:30:00+05:30 ", datetime(2026, 7, 1, 7, tzinfo=UTC)),
    ],
)
def test_an_offset_is_read_and_the_time_is_utc(text: str, expected: datetime) -> None:
    result = parse_when(text)
    assert result == expected
    assert result.utcoffset() == timedelta(0)


def test_an_offset_wins_over_the_zone() -> None:
    assert parse_when("2026-12-24T09:00:00+00:00", timezone="Europe/Berlin") == datetime(
        2026, 12, 24, 9, tzinfo=UTC
    )


def test_a_naive_time_is_refused_without_a_zone() -> None:
    with pytest.raises(WhenError, match=r"has no UTC offset.*SOCIAL_DEFAULT_TIMEZONE"):
        parse_when("2026-12-24 09:00")


@pytest.mark.parametrize(
    ("zone_name", "expected_hour"),
    [("Europe/Berlin", 8), ("America/New_York", 14), ("UTC", 9)],
)
def test_a_naive_time_is_read_in_the_zone(zone_name: str, expected_hour: int) -> None:
    assert parse_when("2026-12-24 09:00", timezone=zone_name) == datetime(
        2026, 12, 24, expected_hour, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("naive", "zone_name", "before", "after"),
    [
        ("2026-03-29 02:30", "Europe/Berlin", "+01:00", "+02:00"),
        ("2026-03-08 02:30", "America/New_York", "-05:00", "-04:00"),
    ],
)
def test_a_time_in_the_gap_is_refused(naive: str, zone_name: str, before: str, after: str) -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(naive, timezone=zone_name)
    message = str(caught.value)
    assert f"does not exist in {zone_name}" in message
    assert f"UTC offset {before} becomes {after}" in message


@pytest.mark.parametrize(
    ("naive", "zone_name", "first", "second"),
    [
        ("2026-10-25 02:30", "Europe/Berlin", "+02:00", "+01:00"),
        ("2026-11-01 01:30", "America/New_York", "-04:00", "-05:00"),
    ],
)
def test_a_time_in_the_fold_is_refused_with_both_readings(
    naive: str, zone_name: str, first: str, second: str
) -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(naive, timezone=zone_name)
    message = str(caught.value)
    iso = naive.replace(" ", "T") + ":00"
    assert f"happens twice in {zone_name}" in message
    assert f"{iso}{first} (the first)" in message
    assert f"{iso}{second} (the second)" in message
    # Either reading, written out, is accepted and an hour apart.
    one = parse_when(f"{iso}{first}", timezone=zone_name)
    two = parse_when(f"{iso}{second}", timezone=zone_name)
    assert two - one == timedelta(hours=1)


def test_now_is_the_given_clock_in_utc() -> None:
    clock = datetime(2026, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_when("now", now=clock) == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_when(" NOW ", now=clock).tzinfo == UTC
    before = datetime.now(UTC)
    assert before <= parse_when("now") <= datetime.now(UTC)


def test_an_aware_datetime_passes_through_in_utc() -> None:
    moment = datetime(2026, 12, 24, 9, tzinfo=timezone(timedelta(hours=1)))
    result = parse_when(moment, timezone="America/New_York")
    assert result == moment
    assert result.tzinfo == UTC


def test_a_naive_datetime_is_read_in_the_zone_and_checked() -> None:
    assert parse_when(datetime(2026, 12, 24, 9), timezone="Europe/Berlin") == datetime(
        2026, 12, 24, 8, tzinfo=UTC
    )
    with pytest.raises(WhenError, match="does not exist"):
        parse_when(datetime(2026, 3, 29, 2, 30), timezone="Europe/Berlin")
    with pytest.raises(WhenError, match="no UTC offset"):
        parse_when(datetime(2026, 12, 24, 9))


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd"])
def test_an_unknown_zone_is_named(name: str) -> None:
    with pytest.raises(WhenError, match=r"unknown time zone.*IANA"):
        zone(name)
    if name:
        with pytest.raises(WhenError, match=f"unknown time zone {name!r}"):
            parse_when("2026-12-24 09:00", timezone=name)


@pytest.mark.parametrize("text", ["tomorrow", "2026-13-01 09:00", "24.12.2026 09:00", ""])
def test_what_is_not_a_time_says_what_is(text: str) -> None:
    with pytest.raises(WhenError, match="is not a time: use ISO 8601"):
        parse_when(text, timezone="UTC")
