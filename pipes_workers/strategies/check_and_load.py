"""check_and_load: one COUNT(*) of rows past the watermark; 0 means skipped, otherwise as incremental.

NULL incremental values do not trigger a load on their own (the COUNT looks past the watermark
only); when a load runs, it re-reads them as incremental does.
"""

from __future__ import annotations

from dataloader_contract.result import LoadResult
from pipes_workers.sources.base import Aggregate, Condition, RowFilter
from pipes_workers.strategies.base import LoadContext, LoadStrategy, register
from pipes_workers.strategies.incremental import merge_since
from pipes_workers.watermark import format_watermark


@register
class CheckAndLoadStrategy(LoadStrategy):
    """Skip cheaply when nothing is new; otherwise MERGE like incremental."""

    name = "check_and_load"

    def run(self, ctx: LoadContext) -> LoadResult:
        column, start = ctx.incremental_start()
        if start is not None:
            (count,) = ctx.aggregate([Aggregate("count")], RowFilter((Condition(column.name, ">", start),)))
            if not count:
                text = format_watermark(start)
                ctx.log(f"no rows with {column.name} > {text}: skipped, nothing written")
                return ctx.result(
                    watermark_before=text, watermark_after=text, delta_version=ctx.state.version, skipped=True
                )
            ctx.log(f"{count} rows past the watermark: loading")
        return merge_since(ctx, column, start)
