"""Next cron fire in a row's time zone, correct across daylight-saving changes.

Cron fields are read as wall-clock times in `timezone`. A wall time that does not exist (spring
forward) fires after the gap, shifted by the gap's length, as PostgreSQL reads such a local time
(02:30 on a 02:00->03:00 night fires at 03:30). A wall time that happens twice (fall back) fires
once, at its first occurrence.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

# Longest daylight-saving shift we account for when a gap moves a fire past later wall times.
_MAX_SHIFT = timedelta(hours=3)


def next_fire(cron: str, timezone: str, after: datetime) -> datetime:
    """The first fire of `cron` (read in `timezone`) strictly after `after`, as an aware UTC datetime.

    Example: `next_fire("30 2 * * *", "Europe/Amsterdam", datetime(2026, 3, 28, 12, tzinfo=UTC))`
    is 2026-03-29 01:30 UTC (03:30 CEST: 02:30 does not exist that night).
    """
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    zone = ZoneInfo(timezone)
    # Start a little early: a candidate in a gap is shifted forward and may still lie after `after`.
    start = (after.astimezone(zone) - _MAX_SHIFT).replace(tzinfo=None)
    candidates = croniter(cron, start)
    best: datetime | None = None
    best_wall: datetime | None = None
    while True:
        wall: datetime = candidates.get_next(datetime)
        if best_wall is not None and wall > best_wall + _MAX_SHIFT:
            assert best is not None
            return best
        fire = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if fire > after and (best is None or fire < best):
            best, best_wall = fire, wall
