"""Source facts for the asset checks: from the worker's metadata, else counted here.

The worker reports `source_row_count` / `source_columns` when it can (it already holds the
connection); older workers do not, and then the orchestrator opens the source with the same reader
(`pipes_workers.sources.open_reader`) and counts — the one place dataloader_defs reads a source.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from dataloader_defs.defs.asset_checks import SourceFacts, rolling_cutoff


def _raw(value: Any) -> Any:
    return getattr(value, "value", value)


def from_worker_metadata(metadata: Mapping[str, Any]) -> SourceFacts | None:
    """Facts the worker reported, or None when it reported no source row count."""
    count = _raw(metadata.get("source_row_count"))
    if count is None:
        return None
    columns = _raw(metadata.get("source_columns"))
    if isinstance(columns, str):
        try:
            columns = json.loads(columns)
        except ValueError:
            columns = [c.strip() for c in columns.split(",") if c.strip()]
    return SourceFacts(
        row_count=int(count),
        columns=tuple(str(c) for c in columns) if columns is not None else None,
        origin="worker",
    )


def count_source(
    row: Any, source: Any, *, secrets_dir: str | None, before: SourceFacts | None = None
) -> SourceFacts:
    """Count the source table now (in the rolling window for rolling) and list its columns.

    `row` is a control_db ControlRow, `source` a control_db SourceDbConfig; `before`, a count taken
    before the load, is kept alongside (same rolling cutoff) so the check can bracket concurrent changes."""
    from pipes_workers.request import SourceConfig
    from pipes_workers.sources import open_reader
    from pipes_workers.sources.base import Aggregate, Condition, RowFilter

    config = SourceConfig(
        db_config_key=source.db_config_key,
        db_type=source.db_type,
        kv_scope=source.db_kv_scope,
        config=dict(source.db_config_value),
    )
    cutoff = None
    row_filter = None
    if row.load_strategy == "rolling" and row.rolling_column and row.rolling_window_days:
        cutoff = (
            before.window_cutoff
            if before and before.window_cutoff
            else rolling_cutoff(int(row.rolling_window_days))
        )
        row_filter = RowFilter(conditions=(Condition(row.rolling_column, ">=", cutoff),))
    with open_reader(config, secrets_dir=secrets_dir) as reader:
        columns = tuple(c.name for c in reader.columns(row.source_schema, row.source_table))
        (count,) = reader.aggregate(row.source_schema, row.source_table, [Aggregate("count")], row_filter)
    return SourceFacts(
        row_count=int(count),
        columns=columns,
        origin="orchestrator",
        window_cutoff=cutoff,
        row_count_before=before.row_count if before else None,
    )
