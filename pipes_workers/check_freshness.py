"""The freshness check (the table is current as of its newest commit or a load that found nothing
new) and `outcome`, how every check builds its CheckOutcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from dataloader_contract.result import CDC_LAG_SPEC, CHECK_SPECS, FRESHNESS, CheckOutcome

DESCRIPTIONS = {spec.name: spec.description for spec in (*CHECK_SPECS, CDC_LAG_SPEC)}
FRESHNESS_GRACE = timedelta(minutes=5)


def outcome(name: str, passed: bool, severity: str, metadata: dict) -> CheckOutcome:
    """The CheckOutcome of check `name`, with its declared description."""
    return CheckOutcome(
        name=name, passed=passed, severity=severity, description=DESCRIPTIONS[name], metadata=metadata
    )


def cron_period(cron: str, timezone: str, now: datetime) -> timedelta:
    """The time between the next two fires of `cron` read in `timezone` (wall clock)."""
    wall = now.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)
    fires = croniter(cron, wall)
    first: datetime = fires.get_next(datetime)
    second: datetime = fires.get_next(datetime)
    return second - first


def check_freshness(
    cron: str | None,
    timezone: str,
    last_commit: datetime | None,
    *,
    source_read_at: datetime | None = None,
    now: datetime | None = None,
) -> CheckOutcome:
    """The table is current as of the later of its newest Delta commit and `source_read_at` (the
    start of this load, which read the source successfully); that is younger than two cron periods
    plus a grace (WARN). A load that finds no new rows writes no commit, but it proves the table
    current: without it such a table would warn although nothing was late."""
    now = now or datetime.now(UTC)
    if not cron:
        return outcome(FRESHNESS, False, "WARN", {"reason": "no cron in the load request"})
    allowed = 2 * cron_period(cron, timezone, now) + FRESHNESS_GRACE
    if last_commit is None:
        return outcome(FRESHNESS, False, "WARN", {"reason": "table not written yet"})
    current_as_of = max(last_commit, source_read_at) if source_read_at is not None else last_commit
    age = now - current_as_of
    metadata: dict[str, object] = {"last_commit": last_commit.isoformat(timespec="seconds")}
    if current_as_of != last_commit:
        metadata["source_read_without_changes"] = current_as_of.isoformat(timespec="seconds")
    metadata.update(
        {
            "age_s": round(age.total_seconds(), 1),
            "allowed_age_s": allowed.total_seconds(),
            "cron": f"{cron} ({timezone})",
        }
    )
    return outcome(FRESHNESS, age <= allowed, "WARN", metadata)
