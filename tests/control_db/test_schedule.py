"""next_fire reads cron in the row's time zone and stays right across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from control_db.schedule import next_fire

AMS = "Europe/Amsterdam"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        # Winter (CET, +01:00): 02:30 local = 01:30 UTC.
        (utc(2026, 3, 27, 12), utc(2026, 3, 28, 1, 30)),
        # 2026-03-29: 02:00 -> 03:00; 02:30 does not exist and fires after the gap, at 03:30 CEST.
        (utc(2026, 3, 28, 12), utc(2026, 3, 29, 1, 30)),
        # Summer (CEST, +02:00): 02:30 local = 00:30 UTC.
        (utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)),
        (utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30)),
        # 2026-10-25: 03:00 -> 02:00; 02:30 happens twice and fires once, at the first (CEST) one.
        (utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)),
        (utc(2026, 10, 25, 1, 0), utc(2026, 10, 26, 1, 30)),
    ],
)
def test_daily_fire_across_dst(after: datetime, expected: datetime) -> None:
    fire = next_fire("30 2 * * *", AMS, after)
    assert fire == expected
    assert fire.tzinfo is UTC


def test_sequence_of_daily_fires_has_one_per_day() -> None:
    fires = [utc(2026, 3, 26)]
    for _ in range(5):
        fires.append(next_fire("30 2 * * *", AMS, fires[-1]))
    local = [fire.astimezone(ZoneInfo(AMS)) for fire in fires[1:]]
    assert [f.day for f in local] == [26, 27, 28, 29, 30]
    assert [f.strftime("%H:%M") for f in local] == ["02:30", "02:30", "02:30", "03:30", "02:30"]


def test_quarter_hourly_fires_are_evenly_spaced_in_utc_across_spring_forward() -> None:
    fire = utc(2026, 3, 29, 0, 50)
    fires = []
    for _ in range(8):
        fire = next_fire("*/15 * * * *", AMS, fire)
        fires.append(fire)
    assert all(b - a == timedelta(minutes=15) for a, b in zip(fires, fires[1:], strict=False))


def test_utc_and_naive_input() -> None:
    assert next_fire("0 * * * *", "UTC", utc(2026, 1, 1, 10, 0)) == utc(2026, 1, 1, 11)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire("0 * * * *", "UTC", datetime(2026, 1, 1))
