"""Table upkeep on a load session's table: compaction (optionally z-ordered), vacuum, file counts."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import DeltaError, SchemaMismatchError

from pipes_workers.delta_settings import writer_properties
from pipes_workers.lake.known_panics import known_panics_hidden
from pipes_workers.lake.markers import META_PREFIX
from pipes_workers.lake.table_facts import add_actions

if TYPE_CHECKING:
    from pipes_workers.lake.session import DeltaSession


@dataclass(frozen=True)
class TableFiles:
    """The data files of the current table version."""

    files: int
    bytes: int


@dataclass(frozen=True)
class VacuumOutcome:
    """What a vacuum removed, and the retention it used (hours)."""

    files_removed: int
    bytes_removed: int
    retention_hours: int


def table_files(table: DeltaTable) -> TableFiles:
    """Data file count and bytes of the table's current version."""
    actions = add_actions(table)
    return TableFiles(files=actions.num_rows, bytes=int(pc.sum(actions.column("size_bytes")).as_py() or 0))


def compact(session: DeltaSession, *, z_order_by: Sequence[str] = ()) -> dict[str, Any]:
    """Rewrite small files into `target_file_size` ones (one commit, no data change); with
    `z_order_by`, also cluster the rows by those columns. Returns delta-rs's metrics."""
    table = session.require()
    options: dict[str, Any] = {
        "target_size": session.target_file_size,
        "writer_properties": writer_properties(),
        "commit_properties": CommitProperties(
            custom_metadata={f"{META_PREFIX}operation": "z_order" if z_order_by else "compact"}
        ),
    }
    try:
        with known_panics_hidden():
            if z_order_by:
                return table.optimize.z_order(list(z_order_by), **options)
            return table.optimize.compact(**options)
    except (DeltaError, SchemaMismatchError, OSError) as exc:
        raise session.failure(exc) from exc


def vacuum(session: DeltaSession, retention_hours: int) -> VacuumOutcome:
    """Delete files no version within `retention_hours` needs, and files no version references
    that are older than that (leftovers of failed writes) — never fewer hours than the table's
    own `delta.deletedFileRetentionDuration` (Delta's safe minimum, 7 days by default)."""
    table = session.require()
    hours = max(retention_hours, min_retention_hours(table.metadata().configuration))
    try:
        # full: also files no version references at all (a failed write's leftovers), once
        # older than the retention, so a write in progress is never touched.
        removed = table.vacuum(
            retention_hours=hours, dry_run=False, enforce_retention_duration=True, full=True
        )
    except (DeltaError, SchemaMismatchError, OSError) as exc:
        raise session.failure(exc) from exc
    size = 0
    if removed:
        for commit in table.history(2):
            if commit.get("operation") == "VACUUM START":
                size = int((commit.get("operationMetrics") or {}).get("sizeOfDataToDelete", 0))
    return VacuumOutcome(files_removed=len(removed), bytes_removed=size, retention_hours=hours)


_INTERVAL = re.compile(r"^\s*(?:interval\s+)?(\d+)\s*(second|minute|hour|day|week)s?\s*$", re.IGNORECASE)
_UNIT_HOURS = {"second": 1 / 3600, "minute": 1 / 60, "hour": 1, "day": 24, "week": 168}
DEFAULT_MIN_RETENTION_HOURS = 168


def min_retention_hours(configuration: dict[str, str]) -> int:
    """The table's `delta.deletedFileRetentionDuration` in whole hours (rounded up); 168 when unset."""
    raw = configuration.get("delta.deletedFileRetentionDuration")
    match = _INTERVAL.match(raw or "")
    if match is None:
        return DEFAULT_MIN_RETENTION_HOURS
    hours = int(match.group(1)) * _UNIT_HOURS[match.group(2).lower()]
    return int(hours) + (hours % 1 > 0)
