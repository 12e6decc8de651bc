"""rolling: read `rolling_column >= today - N days` and make the destination equal that window.

MERGE on primary_keys updates matched rows, inserts new ones and deletes every destination row the
source window does not hold: rows deleted inside the window and rows that fell out of it. An empty
source window writes nothing and never empties the destination. "Today" is the load's UTC date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.result import LoadResult
from pipes_workers.lake.history import CloseMissing
from pipes_workers.sources.base import Condition, RowFilter
from pipes_workers.strategies.base import LoadContext, LoadStrategy, empty_result, register
from pipes_workers.watermark import format_watermark


@register
class RollingStrategy(LoadStrategy):
    """Mirror the last N days of the source."""

    name = "rolling"

    def run(self, ctx: LoadContext) -> LoadResult:
        request = ctx.request
        column = ctx.column(request.rolling_column, "rolling_column")
        days = ctx.positive_setting("rolling_window_days")
        if not request.primary_keys:
            raise ConfigurationError(f"{request.control_key}: rolling needs primary_keys")
        start = window_start(ctx.load_start, days, column.arrow_type, column=column.name)
        ctx.log(f"reading {ctx.table_label} where {column.name} >= {start.isoformat()}")
        stream = ctx.read(RowFilter((Condition(column.name, ">=", start),)))
        if stream.is_empty():
            return empty_result(ctx, request.incremental_value, **_window_read(0, start))
        window = CloseMissing(column.name, start)
        written = ctx.merge(stream.reader(), ctx.marker(watermark=None), window=window)
        value = request.incremental_value
        return ctx.written(stream, written, before=value, after=value, **_window_read(stream.rows, start))


def _window_read(rows: int, start: Any) -> dict[str, Any]:
    """The result fields of a window read: it is the source count of the window, in its own snapshot."""
    return {
        "source_row_count": rows,
        "source_row_count_method": "read snapshot",
        "rolling_cutoff": format_watermark(start),
    }


def window_start(load_start: datetime, days: int, arrow_type: pa.DataType, *, column: str) -> Any:
    """The first value inside the window: midnight (UTC) of `today - days`, typed for the column."""
    first_day: date = load_start.astimezone(UTC).date() - timedelta(days=days)
    if pa.types.is_date(arrow_type):
        return first_day
    if pa.types.is_timestamp(arrow_type):
        midnight = datetime.combine(first_day, time(0))
        return midnight.replace(tzinfo=UTC) if arrow_type.tz is not None else midnight
    raise ConfigurationError(f"rolling_column {column!r} must be a date or timestamp, not {arrow_type}")
