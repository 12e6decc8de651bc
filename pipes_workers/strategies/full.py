"""full: read every row and overwrite the table (schema replaced) in one commit.

Also runs every `load_full` reload. When the control row has an incremental column, the watermark
becomes the source MAX taken before the read (capped); under append_only the read is bounded by
it (plus NULL rows) so the following appends neither skip nor duplicate a row. An empty source
gives an empty table: a full load mirrors the source.
"""

from __future__ import annotations

from pipes_workers.sources.base import Aggregate, Condition, RowFilter
from pipes_workers.strategies.base import LoadContext, LoadStrategy, StrategyOutcome, register
from pipes_workers.watermark import format_watermark


@register
class FullStrategy(LoadStrategy):
    """Overwrite the destination with the whole source."""

    name = "full"

    def run(self, ctx: LoadContext) -> StrategyOutcome:
        request = ctx.request
        column = (
            ctx.column(request.incremental_column, "incremental_column")
            if request.incremental_column
            else None
        )
        row_filter = None
        after = None
        if column is not None:
            (source_max,) = ctx.aggregate([Aggregate("max", column.name)])
            upper = ctx.capped(source_max, column)
            after = format_watermark(upper)
            if request.load_strategy == "append_only" and upper is not None:
                row_filter = RowFilter((Condition(column.name, "<=", upper),), or_null_column=column.name)
        ctx.log(f"reading all of {ctx.table_label}")
        stream = ctx.read(row_filter, track=column.name if column is not None else None)
        written = ctx.destination.overwrite(stream.reader(), ctx.marker(watermark=after))
        return StrategyOutcome(
            rows_processed=stream.rows,
            bytes_written=written.bytes_written,
            watermark_before=request.incremental_value,
            watermark_after=after if column is not None else request.incremental_value,
            delta_version=written.delta_version,
            null_incremental_rows=stream.null_rows,
            committed=True,
            source_rows_in_read=stream.rows if row_filter is None else None,
            unique_keys_written=stream.key_order.proven and stream.key_order.rows == stream.rows,
        )
