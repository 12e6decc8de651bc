"""append_only: read `watermark < incremental_column <= cap` (never a lookback) and append.

The upper bound is the source MAX taken before the read, capped at load start + margin, so the
stored watermark is exactly the highest value appended: a row arriving during the read, or stamped
in the far future, is appended by a later load and never twice. Rows whose incremental column IS
NULL are appended by the first load of the table only (reported as `null_incremental_rows`, with a
warning); later NULL rows cannot be told apart from already-appended ones and are not loaded.

The append claims unique keys when it can (lake/append_claim.py): the first load proves them from the key
order it wrote; later appends of keys above the table's keep the claim going, so the key check
scans nothing. Rows that break the order are appended again without a claim, and later appends of
the table try none (the check scans them).
"""

from __future__ import annotations

from dataclasses import replace

from dataloader_contract.result import LoadResult
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.writes import WriteOutcome
from pipes_workers.sources.base import Aggregate, Condition, RowFilter
from pipes_workers.strategies.base import LoadContext, LoadStrategy, empty_result, register
from pipes_workers.strategies.stream import TrackedStream
from pipes_workers.watermark import format_watermark, greater


@register
class AppendOnlyStrategy(LoadStrategy):
    """Append the rows past the watermark."""

    name = "append_only"

    def run(self, ctx: LoadContext) -> LoadResult:
        column, start = ctx.incremental_start()
        before = format_watermark(start)
        first_load = ctx.state.txn_version is None
        conditions = [Condition(column.name, ">", start)] if start is not None else []
        (source_max,) = ctx.aggregate(
            [Aggregate("max", column.name)], RowFilter(tuple(conditions)) if conditions else None
        )
        upper = ctx.capped(source_max, column)
        if upper is None and not first_load:
            return empty_result(ctx, before)
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
            return empty_result(ctx, before)
        after = format_watermark(greater(start, upper))
        new_table = not ctx.state.exists
        written, stream = _append(ctx, stream, ctx.marker(watermark=after), row_filter, column.name)
        if stream.null_rows:
            ctx.log(
                f"WARNING: {stream.null_rows} rows with NULL {column.name} appended by this first load; "
                "later rows with a NULL incremental column are not loaded by append_only"
            )
        if new_table and stream.key_order.proven and stream.key_order.rows == stream.rows:
            ctx.destination.note_keys_in_order(stream.rows)
        return ctx.written(stream, written, before=before, after=after)


def _append(
    ctx: LoadContext, stream: TrackedStream, marker: CommitMarker, row_filter: RowFilter | None, track: str
) -> tuple[WriteOutcome, TrackedStream]:
    """Append `stream`, claiming unique keys when the table allows a claim; when the rows break it,
    read them again and append them without one. Returns the write and the stream it took."""
    claim, refused = ctx.destination.append_claim(ctx.request.primary_keys)
    if claim is None:
        return ctx.destination.append(stream.reader(), replace(marker, unique_keys_refused=refused)), stream
    guard = stream.guard(claim)
    claiming = replace(marker, unique_keys=claim.keys, unique_keys_base=claim.base)
    try:
        return ctx.destination.append(stream.reader(), claiming), stream
    except Exception:
        if guard.broken is None:
            raise
    ctx.log(f"{guard.broken}: appending the same rows again without a unique-keys claim")
    stream.close()
    again = ctx.read(row_filter, track=track)
    return ctx.destination.append(again.reader(), replace(marker, unique_keys_refused=guard.broken)), again
