"""incremental: read `incremental_column > watermark - lookback` (plus NULL rows), MERGE on primary_keys.

The new watermark is the source MAX over the read range taken just before the read (capped at load
start + margin): rows that arrive during the read are merged now and re-read next time, which the
MERGE makes harmless. Rows whose incremental column IS NULL are re-read by every load.
"""

from __future__ import annotations

from typing import Any

from pipes_workers.errors import ConfigurationError
from pipes_workers.sources.base import Aggregate, Condition, RowFilter, SourceColumn
from pipes_workers.strategies.base import LoadContext, LoadStrategy, StrategyOutcome, empty_outcome, register
from pipes_workers.watermark import format_watermark, greater, parse_lookback, subtract_lookback


@register
class IncrementalStrategy(LoadStrategy):
    """MERGE the rows changed since the watermark (minus the lookback)."""

    name = "incremental"

    def run(self, ctx: LoadContext) -> StrategyOutcome:
        column = ctx.column(ctx.request.incremental_column, "incremental_column")
        return merge_since(ctx, column, ctx.starting_watermark(column))


def merge_since(ctx: LoadContext, column: SourceColumn, start: Any) -> StrategyOutcome:
    """Read rows past `start - lookback` (and NULL rows), MERGE them, advance the watermark.

    Args:
        ctx: the load context.
        column: the incremental column.
        start: the typed starting watermark (None reads every row).

    Returns:
        StrategyOutcome; nothing written and the watermark unchanged when the read is empty.
    """
    request = ctx.request
    if not request.primary_keys:
        raise ConfigurationError(f"{request.control_key}: {request.load_strategy} needs primary_keys")
    lookback = parse_lookback(request.incremental_lookback, column.arrow_type, column=column.name)
    lower = subtract_lookback(start, lookback)
    row_filter = (
        RowFilter((Condition(column.name, ">", lower),), or_null_column=column.name)
        if lower is not None
        else None
    )
    (source_max,) = ctx.aggregate([Aggregate("max", column.name)], row_filter)
    before = format_watermark(start)
    after = format_watermark(greater(start, ctx.capped(source_max, column)))
    ctx.log(f"reading {ctx.table_label} where {column.name} > {format_watermark(lower)} or is NULL")
    stream = ctx.read(row_filter, track=column.name)
    if stream.is_empty():
        return empty_outcome(ctx, before)
    written = ctx.destination.merge(stream.reader(), request.primary_keys, ctx.marker(watermark=after))
    if stream.null_rows:
        ctx.log(
            f"{stream.null_rows} rows with NULL {column.name} merged (NULL rows are re-read by every load)"
        )
    return StrategyOutcome(
        rows_processed=stream.rows,
        bytes_written=written.bytes_written,
        watermark_before=before,
        watermark_after=after,
        delta_version=written.delta_version,
        null_incremental_rows=stream.null_rows,
        committed=True,
    )
