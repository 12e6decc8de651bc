"""append_only: read `watermark < incremental_column <= cap` (never a lookback) and append.

The upper bound is the source MAX taken before the read, capped at load start + margin, so the
stored watermark is exactly the highest value appended: a row arriving during the read, or stamped
in the far future, is appended by a later load and never twice. Rows whose incremental column IS
NULL are appended by the first load of the table only (reported as `null_incremental_rows`, with a
warning); later NULL rows cannot be told apart from already-appended ones and are not loaded.
"""

from __future__ import annotations

from pipes_workers.sources.base import Aggregate, Condition, RowFilter
from pipes_workers.strategies.base import LoadContext, LoadStrategy, StrategyOutcome, empty_outcome, register
from pipes_workers.watermark import format_watermark, greater


@register
class AppendOnlyStrategy(LoadStrategy):
    """Append the rows past the watermark."""

    name = "append_only"

    def run(self, ctx: LoadContext) -> StrategyOutcome:
        column = ctx.column(ctx.request.incremental_column, "incremental_column")
        start = ctx.starting_watermark(column)
        before = format_watermark(start)
        first_load = ctx.state.txn_version is None
        conditions = [Condition(column.name, ">", start)] if start is not None else []
        (source_max,) = ctx.aggregate(
            [Aggregate("max", column.name)], RowFilter(tuple(conditions)) if conditions else None
        )
        upper = ctx.capped(source_max, column)
        if upper is None and not first_load:
            return empty_outcome(ctx, before)
        if upper is not None:
            conditions.append(Condition(column.name, "<=", upper))
        if upper is not None and source_max > upper:
            ctx.log(f"rows with {column.name} beyond {format_watermark(upper)} are left for a later load")
        row_filter = (
            RowFilter(tuple(conditions), or_null_column=column.name if first_load else None)
            if conditions
            else None
        )
        stream = ctx.read(row_filter, track=column.name)
        if stream.is_empty():
            return empty_outcome(ctx, before)
        after = format_watermark(greater(start, upper))
        written = ctx.destination.append(stream.reader(), ctx.marker(watermark=after))
        if stream.null_rows:
            ctx.log(
                f"WARNING: {stream.null_rows} rows with NULL {column.name} appended by this first load; "
                "later rows with a NULL incremental column are not loaded by append_only"
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
