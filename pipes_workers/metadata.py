"""A LoadResult as typed Pipes metadata: only the fields that apply, each with its Dagster type.

Watermarks that are timestamps become `timestamp` values (the UI shows them as times), counts are
`int`, the destination is a `path` (local lake) or `url` (object storage). `dagster/row_count` is
the Delta table's row count, so Dagster's own row-count plot works per table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dataloader_contract.result import CheckOutcome, LoadResult


def _typed(value: Any, kind: str) -> dict[str, Any]:
    return {"raw_value": value, "type": kind}


def _watermark(text: str) -> dict[str, Any]:
    """A timestamp watermark as a `timestamp` (seconds since the epoch), anything else as text."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _typed(text, "text")
    if moment.tzinfo is None or len(text) <= 10:  # naive wall-clock times and dates stay text
        return _typed(text, "text")
    return _typed(moment.timestamp(), "timestamp")


def materialization_metadata(result: LoadResult, *, source_table: str) -> dict[str, dict[str, Any]]:
    """The materialisation metadata of a successful load (fields that do not apply are left out)."""
    meta: dict[str, dict[str, Any]] = {
        "strategy": _typed(result.strategy, "text"),
        "source_table": _typed(source_table, "text"),
        "rows_read": _typed(result.rows_read, "int"),
        "rows_written": _typed(result.rows_written, "int"),
        "seconds": _typed(result.seconds, "float"),
    }
    if result.rows_per_second is not None:
        meta["rows_per_second"] = _typed(result.rows_per_second, "float")
    if result.bytes_written:
        meta["bytes_written"] = _typed(result.bytes_written, "int")
    for name in ("watermark_before", "watermark_after"):
        value = getattr(result, name)
        if value is not None:
            meta[name] = _watermark(value)
    if result.delta_version is not None:
        meta["delta_version"] = _typed(result.delta_version, "int")
    if result.source_row_count is not None:
        meta["source_row_count"] = _typed(result.source_row_count, "int")
    if result.destination_row_count is not None:
        meta["dagster/row_count"] = _typed(result.destination_row_count, "int")
    if result.destination_uri:
        kind = "url" if "://" in result.destination_uri else "path"
        meta["destination"] = _typed(result.destination_uri, kind)
    if result.skipped:
        meta["skipped"] = _typed("no new rows past the watermark", "text")
    elif result.empty:
        meta["skipped"] = _typed("the source returned no rows: nothing written", "text")
    if result.null_incremental_rows:
        meta["null_incremental_rows"] = _typed(result.null_incremental_rows, "int")
    if result.chunks_total is not None:
        meta["chunks"] = _typed(f"{result.chunks_done} of {result.chunks_total}", "text")
    if result.next_load_strategy:
        meta["next_load_strategy"] = _typed(result.next_load_strategy, "text")
    if result.rows_deleted is not None:
        meta["rows_deleted"] = _typed(result.rows_deleted, "int")
    if result.deletes_note:
        meta["deletes_note"] = _typed(result.deletes_note, "text")
    if result.versions_added is not None or result.versions_closed is not None:
        meta["history"] = _typed("scd2: dagster/row_count counts current versions", "text")
        meta["versions_added"] = _typed(result.versions_added or 0, "int")
        meta["versions_closed"] = _typed(result.versions_closed or 0, "int")
    if result.cdc_lag_bytes is not None:
        meta["cdc_lag_bytes"] = _typed(result.cdc_lag_bytes, "int")
    if result.rolling_cutoff:
        meta["rolling_window_from"] = _typed(result.rolling_cutoff, "text")
    if result.hashed_columns:
        hashed = ", ".join(result.hashed_columns)
        meta["hashed_columns"] = _typed(f"{hashed} (HMAC-SHA-256, hex)", "text")
    if result.columns_left_out:
        meta["columns_not_loaded"] = _typed(", ".join(result.columns_left_out), "text")
    return meta


def check_metadata(check: CheckOutcome) -> dict[str, dict[str, Any]]:
    """A check's metadata with ints as `int` and everything else as text."""
    meta = {"description": _typed(check.description, "text")}
    for key, value in check.metadata.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            meta[key] = _typed(str(value), "text")
        else:
            meta[key] = _typed(value, "int" if isinstance(value, int) else "float")
    return meta
