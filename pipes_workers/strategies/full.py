"""full: read every row and overwrite the table (schema replaced) in one commit.

Also runs every `load_full` reload. When the control row has an incremental column, the watermark
becomes the source MAX taken before the read (capped); under append_only the read is bounded by
it (plus NULL rows) so the following appends neither skip nor duplicate a row. An empty source
gives an empty table: a full load mirrors the source.
"""

from __future__ import annotations

from dataloader_contract.result import LoadResult
from pipes_workers.sources.base import Aggregate, Condition, RowFilter
from pipes_workers.strategies.base import LoadContext, LoadStrategy, register
from pipes_workers.watermark import format_watermark


@register
class FullStrategy(LoadStrategy):
    """Overwrite the destination with the whole source."""

    name = "full"

    def run(self, ctx: LoadContext) -> LoadResult:
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
        if stream.key_order.proven and stream.key_order.rows == stream.rows:
            ctx.destination.note_keys_in_order(stream.rows)
        whole_source = row_filter is None  # the read is then the source count, in its own snapshot
        return ctx.written(
            stream,
            written,
            before=request.incremental_value,
            after=after if column is not None else request.incremental_value,
            source_row_count=stream.rows if whole_source else None,
            source_row_count_method="read snapshot" if whole_source else None,
        )
