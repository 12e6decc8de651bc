"""Asset checks on dataloader_table_load, evaluated by the asset right after each load.

Why inside the asset: the checks need the load's own facts (strategy, worker-reported source count,
Delta version) and must be partition-aware; a check emitted by the partitioned asset's run is
recorded for that partition with no preview APIs. Each check is also a plain function, so
`scripts/checks.py` and tests call them directly.

Source facts (row count, column names) come from the worker's metadata (`source_row_count`,
`source_columns`) when it reports them; otherwise the orchestrator counts the source itself through
`pipes_workers.sources.open_reader` (same reader, same quoting), at check time.

Row-count semantics (destination = the Delta table after the load):
- full: destination == source.
- incremental, check_and_load, chunked_backfill, append_only: destination >= source. These never
  propagate source deletes, so more rows are fine; fewer means rows were missed. Duplicates are
  the primary-key check's job.
- rolling: destination == source counted inside the window (both sides with the same cutoff).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    PartitionsDefinition,
    PreviewWarning,
)
from deltalake import DeltaTable

from dataloader_defs.lake import arrow_schema

ASSET_KEY = AssetKey("dataloader_table_load")

ROW_COUNT = "row_count_reconciliation"
PK_UNIQUE = "primary_key_unique"
FRESHNESS = "freshness_against_cron"
SCHEMA_DRIFT = "schema_drift"

# Column-name prefixes a writer may add for bookkeeping; never reported as drift.
TECHNICAL_PREFIXES = ("_dataloader", "__")
FRESHNESS_GRACE = timedelta(minutes=5)


def check_specs(partitions_def: PartitionsDefinition) -> list[AssetCheckSpec]:
    """The checks the load asset emits after every run, one result per partition (control_key).

    `partitions_def` on AssetCheckSpec is a preview API in Dagster 1.13; it is what records each
    result against its partition, so the UI shows the checks per table, not per asset."""
    specs = [
        (ROW_COUNT, False, "Destination rows reconcile with the source (by strategy semantics). ERROR."),
        (PK_UNIQUE, True, "Primary keys are unique and not null. ERROR, blocking."),
        (FRESHNESS, False, "The latest Delta commit is within two cron periods. WARN."),
        (SCHEMA_DRIFT, False, "Source and Delta columns match by name. WARN."),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=PreviewWarning)
        return [
            AssetCheckSpec(
                name, asset=ASSET_KEY, blocking=blocking, description=text, partitions_def=partitions_def
            )
            for name, blocking, text in specs
        ]


@dataclass(frozen=True)
class SourceFacts:
    """What the source holds right now: row count (in the strategy's window) and column names."""

    row_count: int | None
    columns: tuple[str, ...] | None
    origin: str  # "worker" or "orchestrator"
    window_cutoff: Any = None  # rolling only, when the orchestrator counted with its own cutoff
    row_count_before: int | None = None  # orchestrator only: counted just before the load started

    def count_range(self) -> tuple[int, int] | None:
        """The source count bracket: (low, high) over the counts before and after the load."""
        counts = [c for c in (self.row_count_before, self.row_count) if c is not None]
        return (min(counts), max(counts)) if counts else None


def rolling_cutoff(window_days: int, today: date | None = None) -> date:
    """The first day inside a rolling window of `window_days` days."""
    return (today or datetime.now(UTC).date()) - timedelta(days=window_days)


def _cutoff_scalar(cutoff: date, field_type: pa.DataType) -> pa.Scalar:
    if pa.types.is_timestamp(field_type):
        value = datetime.combine(cutoff, time.min, tzinfo=UTC if field_type.tz else None)
        return pa.scalar(value, type=field_type)
    return pa.scalar(cutoff, type=pa.date32()).cast(field_type)


def destination_count(
    table: DeltaTable | None, *, column: str | None = None, cutoff: date | None = None
) -> int:
    """Rows in the Delta table, optionally only those with `column >= cutoff`."""
    if table is None:
        return 0
    dataset = table.to_pyarrow_dataset()
    if column is None or cutoff is None:
        return dataset.count_rows()
    field_type = dataset.schema.field(column).type
    return dataset.count_rows(filter=pc.field(column) >= _cutoff_scalar(cutoff, field_type))


def check_row_count(
    strategy: str, source: SourceFacts, table: DeltaTable | None, *, rolling_column: str | None = None
) -> AssetCheckResult:
    """Reconcile destination and source row counts by strategy semantics.

    When the orchestrator counted (before and after the load), a source that changed meanwhile gives
    a bracket: "equal" means low <= destination <= high, ">=" means destination >= low. On a quiet
    source both counts agree and the comparison is exact."""
    bracket = source.count_range()
    if bracket is None:
        return AssetCheckResult(
            check_name=ROW_COUNT,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata={"reason": "source row count unavailable", "source_facts_from": source.origin},
        )
    if strategy == "rolling" and source.window_cutoff is not None:
        dest = destination_count(table, column=rolling_column, cutoff=source.window_cutoff)
    else:
        dest = destination_count(table)
    low, high = bracket
    exact = strategy in ("full", "rolling")
    expected = "destination == source" if exact else "destination >= source"
    passed = low <= dest <= high if exact else dest >= low
    metadata: dict[str, Any] = {
        "strategy": strategy,
        "rule": expected,
        "source_rows": source.row_count,
        "destination_rows": dest,
        "missing_rows": max(0, low - dest),
        "source_facts_from": source.origin,
    }
    if source.row_count_before is not None:
        metadata["source_rows_before_load"] = source.row_count_before
    if source.window_cutoff is not None:
        metadata["window_cutoff"] = str(source.window_cutoff)
    return AssetCheckResult(
        check_name=ROW_COUNT, passed=passed, severity=AssetCheckSeverity.ERROR, metadata=metadata
    )


def check_primary_key(primary_keys: Sequence[str], table: DeltaTable | None) -> AssetCheckResult:
    """No duplicate and no NULL primary keys in the Delta table (blocking, ERROR)."""
    if not primary_keys:
        return AssetCheckResult(
            check_name=PK_UNIQUE, passed=True, metadata={"reason": "no primary_keys configured"}
        )
    if table is None:
        return AssetCheckResult(
            check_name=PK_UNIQUE, passed=True, metadata={"reason": "table not written yet"}
        )
    keys = list(primary_keys)
    data = table.to_pyarrow_dataset().to_table(columns=keys)
    null_mask = None
    for key in keys:
        mask = pc.is_null(data[key])
        null_mask = mask if null_mask is None else pc.or_(null_mask, mask)
    null_rows = int(pc.sum(pc.cast(null_mask, pa.int64())).as_py() or 0) if data.num_rows else 0
    counts = data.group_by(keys).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts["count_all"], 1))
    duplicate_rows = int(pc.sum(duplicated["count_all"]).as_py() or 0) if duplicated.num_rows else 0
    sample = [
        {k: str(v) for k, v in row.items() if k != "count_all"} | {"count": row["count_all"]}
        for row in duplicated.slice(0, 5).to_pylist()
    ]
    return AssetCheckResult(
        check_name=PK_UNIQUE,
        passed=duplicated.num_rows == 0 and null_rows == 0,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "primary_keys": ", ".join(keys),
            "rows": data.num_rows,
            "duplicate_keys": duplicated.num_rows,
            "rows_with_duplicate_keys": duplicate_rows,
            "null_key_rows": null_rows,
            "sample_duplicates": MetadataValue.json(sample),
        },
    )


def check_freshness(
    cron: str,
    timezone: str,
    table: DeltaTable | None,
    *,
    next_fire: Callable[[str, str, datetime], datetime],
    now: datetime | None = None,
) -> AssetCheckResult:
    """The latest Delta commit is younger than two cron periods plus a grace (WARN)."""
    now = now or datetime.now(UTC)
    first = next_fire(cron, timezone, now)
    period = next_fire(cron, timezone, first) - first
    allowed = 2 * period + FRESHNESS_GRACE
    if table is None:
        return AssetCheckResult(
            check_name=FRESHNESS,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata={"reason": "table not written yet", "allowed_age_s": allowed.total_seconds()},
        )
    last = table.history(1)[0]
    committed = datetime.fromtimestamp(last["timestamp"] / 1000, tz=UTC)
    age = now - committed
    return AssetCheckResult(
        check_name=FRESHNESS,
        passed=age <= allowed,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "last_commit": committed.isoformat(),
            "delta_version": last.get("version"),
            "age_s": round(age.total_seconds(), 1),
            "allowed_age_s": allowed.total_seconds(),
            "cron": f"{cron} ({timezone})",
        },
    )


def check_schema_drift(source: SourceFacts, table: DeltaTable | None) -> AssetCheckResult:
    """Source columns and Delta columns match by name (WARN)."""
    if source.columns is None or table is None:
        reason = "source columns unavailable" if source.columns is None else "table not written yet"
        return AssetCheckResult(check_name=SCHEMA_DRIFT, passed=True, metadata={"reason": reason})
    delta_columns = [f.name for f in arrow_schema(table) if not f.name.startswith(TECHNICAL_PREFIXES)]
    only_source = [c for c in source.columns if c not in delta_columns]
    only_delta = [c for c in delta_columns if c not in source.columns]
    return AssetCheckResult(
        check_name=SCHEMA_DRIFT,
        passed=not only_source and not only_delta,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "source_only_columns": ", ".join(only_source) or "-",
            "delta_only_columns": ", ".join(only_delta) or "-",
            "source_columns": len(source.columns),
            "delta_columns": len(delta_columns),
            "source_facts_from": source.origin,
        },
    )


def failed_check(name: str, exc: Exception) -> AssetCheckResult:
    """A check that could not be evaluated: failed, with the error (never swallowed)."""
    severity = AssetCheckSeverity.ERROR if name == PK_UNIQUE else AssetCheckSeverity.WARN
    return AssetCheckResult(
        check_name=name,
        passed=False,
        severity=severity,
        metadata={"error": f"{type(exc).__name__}: {exc}"[:2000]},
    )
