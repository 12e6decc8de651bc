"""incremental: read `incremental_column > watermark - lookback` (plus NULL rows), MERGE on primary_keys.

The new watermark is the MAX over the rows this load read (capped at load start + margin). When the
table and a watermark exist, a read of at most DATALOADER_SMALL_READ_MB of Arrow data — the everyday
case — is collected whole, so its MAX is known before the commit and the merge can prune target files
by the source's key range. A larger read (or the first load of a table) is streamed: the watermark is then the source
MAX taken just before the read, so rows that arrive during it are merged now and re-read next time,
which the MERGE makes harmless. Rows whose incremental column IS NULL are re-read by every load.
"""

from __future__ import annotations

from typing import Any

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.result import LoadResult
from pipes_workers.delta_settings import SMALL_READ_ENV, small_read_bytes
from pipes_workers.lake.schema_conform import Rows
from pipes_workers.sources.base import Aggregate, Condition, RowFilter, SourceColumn
from pipes_workers.strategies.base import LoadContext, LoadStrategy, empty_result, register
from pipes_workers.strategies.stream import TrackedStream
from pipes_workers.watermark import format_watermark, greater, parse_lookback, subtract_lookback


@register
class IncrementalStrategy(LoadStrategy):
    """MERGE the rows changed since the watermark (minus the lookback)."""

    name = "incremental"

    def run(self, ctx: LoadContext) -> LoadResult:
        return merge_since(ctx, *ctx.incremental_start())


def merge_since(ctx: LoadContext, column: SourceColumn, start: Any) -> LoadResult:
    """Read rows past `start - lookback` (and NULL rows), MERGE them, advance the watermark.

    Args:
        ctx: the load context.
        column: the incremental column.
        start: the typed starting watermark (None reads every row).

    Returns:
        The strategy's LoadResult; nothing written and the watermark unchanged when the read is empty.
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
    before = format_watermark(start)
    ctx.log(f"reading {ctx.table_label} where {column.name} > {format_watermark(lower)} or is NULL")
    if start is not None and ctx.state.exists:
        stream = ctx.read(row_filter, track=column.name)
        rows = stream.collect(small_read_bytes())
        if rows is not None:
            if not rows.num_rows:
                return empty_result(ctx, before)
            # The whole read is in hand: its own MAX is the watermark.
            after = format_watermark(greater(start, ctx.capped(stream.max_value, column)))
            return _merge(ctx, column, stream, rows, before, after)
        ctx.log(f"more than {SMALL_READ_ENV} of changed rows: reading them again as a stream")
    (source_max,) = ctx.aggregate([Aggregate("max", column.name)], row_filter)
    after = format_watermark(greater(start, ctx.capped(source_max, column)))
    stream = ctx.read(row_filter, track=column.name)
    if stream.is_empty():
        return empty_result(ctx, before)
    return _merge(ctx, column, stream, stream.reader(), before, after)


def _merge(
    ctx: LoadContext,
    column: SourceColumn,
    stream: TrackedStream,
    rows: Rows,
    before: str | None,
    after: str | None,
) -> LoadResult:
    """MERGE `rows` (the collected table or `stream`'s reader) with `after` as the commit's watermark."""
    written = ctx.merge(rows, ctx.marker(watermark=after))
    if stream.null_rows:
        ctx.log(
            f"{stream.null_rows} rows with NULL {column.name} merged (NULL rows are re-read by every load)"
        )
    return ctx.written(stream, written, before=before, after=after)
