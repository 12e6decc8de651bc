"""chunked_backfill: MIN..MAX of chunk_column cut into chunk_size chunks, one commit per chunk.

Chunk units: `chunk_size` values for numeric columns, `chunk_size` days for date/timestamp columns.
Chunk i covers `[MIN + i*size, MIN + (i+1)*size)`, the last one `[…, MAX]`: together MIN..MAX
inclusive. Rows whose chunk column IS NULL go with chunk 1. Chunk 1 overwrites the table, the others
append. Each commit stores the plan (bounds, size, index, total, hand-over watermark) in its
metadata, so a re-run after a crash resumes at the first unfinished chunk with the same plan. At
the end the load hands over to `incremental` with the source MAX(incremental_column) taken when the
backfill started (capped), which the last chunk's commit also records.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.result import LoadResult
from pipes_workers.sources.base import Aggregate, Condition, RowFilter, SourceColumn
from pipes_workers.strategies.base import LoadContext, LoadStrategy, register
from pipes_workers.strategies.faults import crash_point
from pipes_workers.watermark import format_watermark, is_temporal, parse_watermark

HANDOVER_STRATEGY = "incremental"


@dataclass(frozen=True)
class ChunkPlan:
    """The chunks of one backfill."""

    low: Any
    high: Any
    size: int
    total: int
    handover: str | None
    step: Any

    @classmethod
    def build(
        cls, low: Any, high: Any, size: int, arrow_type: pa.DataType, handover: str | None
    ) -> ChunkPlan:
        """Plan chunks of `size` (values or days) covering low..high inclusive."""
        step = chunk_step(size, arrow_type)
        total = int((high - low) // step) + 1
        return cls(low=low, high=high, size=size, total=total, handover=handover, step=step)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], arrow_type: pa.DataType, column: str) -> ChunkPlan:
        """The plan a previous run stored in its commit metadata."""
        low = parse_watermark(meta["low"], arrow_type, column=column)
        high = parse_watermark(meta["high"], arrow_type, column=column)
        return cls.build(low, high, int(meta["size"]), arrow_type, meta.get("handover"))

    def metadata(self, index: int) -> dict[str, Any]:
        """What the commit of chunk `index` (0-based) records."""
        return {
            "index": index,
            "total": self.total,
            "low": format_watermark(self.low),
            "high": format_watermark(self.high),
            "size": self.size,
            "handover": self.handover,
        }

    def row_filter(self, index: int, column: str) -> RowFilter:
        """`column >= lo AND column < next_lo` (last chunk: `<= high`); chunk 0 also takes NULL rows."""
        lo = self.low + self.step * index
        if index + 1 < self.total:
            upper = Condition(column, "<", self.low + self.step * (index + 1))
        else:
            upper = Condition(column, "<=", self.high)
        return RowFilter((Condition(column, ">=", lo), upper), or_null_column=column if index == 0 else None)


def chunk_step(size: int, arrow_type: pa.DataType) -> Any:
    """One chunk's width: days for date/timestamp columns, values otherwise."""
    if is_temporal(arrow_type):
        return timedelta(days=size)
    if pa.types.is_integer(arrow_type):
        return size
    if pa.types.is_decimal(arrow_type):
        return Decimal(size)
    if pa.types.is_floating(arrow_type):
        return float(size)
    raise ConfigurationError(f"chunk_column type {arrow_type} cannot be cut into chunks")


@register
class ChunkedBackfillStrategy(LoadStrategy):
    """Backfill a large table chunk by chunk, resumable, then hand over to incremental."""

    name = "chunked_backfill"

    def run(self, ctx: LoadContext) -> LoadResult:
        request = ctx.request
        column = ctx.column(request.chunk_column, "chunk_column")
        ctx.positive_setting("chunk_size")
        resumed = self._resumable(ctx, column)
        if resumed is not None:
            plan, first = resumed
            if first >= plan.total:
                ctx.log("backfill already committed every chunk: handing over")
                return self._handover(ctx, plan, rows=0, bytes_written=0, version=ctx.state.version)
            ctx.log(f"resuming backfill at chunk {first + 1} of {plan.total}")
        else:
            plan = self._plan(ctx, column)
            first = 0
            if plan is None:
                ctx.log("source is empty: nothing to backfill, handing over")
                return ctx.result(
                    watermark_before=request.incremental_value,
                    delta_version=ctx.state.version,
                    next_load_strategy=HANDOVER_STRATEGY,
                    chunks_done=0,
                    chunks_total=0,
                )
        rows = bytes_written = 0
        version = ctx.state.version
        for offset, index in enumerate(range(first, plan.total)):
            ctx.log(f"chunk {index + 1} of {plan.total}")
            stream = ctx.read(plan.row_filter(index, column.name))
            if index > 0 and stream.is_empty():
                continue
            last = index + 1 == plan.total
            marker = ctx.marker(
                watermark=plan.handover if last else None, chunk=plan.metadata(index), offset=offset
            )
            if index == 0:
                written = ctx.destination.overwrite(stream.reader(), marker)
            else:
                written = ctx.destination.append(stream.reader(), marker)
            rows += stream.rows
            bytes_written += written.bytes_written
            version = written.delta_version
            ctx.log(
                f"chunk {index + 1} of {plan.total} committed: {stream.rows:,} rows (Delta version {version})"
            )
            crash_point(f"chunk:{index + 1}")
        return self._handover(ctx, plan, rows=rows, bytes_written=bytes_written, version=version)

    def _resumable(self, ctx: LoadContext, column: SourceColumn) -> tuple[ChunkPlan, int] | None:
        """(plan, first chunk to load) from the last commit of an unfinished backfill, else None."""
        state = ctx.state
        meta = state.last_chunk
        if ctx.request.load_full or state.last_strategy != self.name or not meta:
            return None
        plan = ChunkPlan.from_metadata(meta, column.arrow_type, column.name)
        next_index = int(meta["index"]) + 1
        if next_index >= plan.total and ctx.request.incremental_value == plan.handover:
            return None  # finished and already handed over: this is a new backfill
        return plan, next_index

    def _plan(self, ctx: LoadContext, column: SourceColumn) -> ChunkPlan | None:
        request = ctx.request
        aggregates = [Aggregate("min", column.name), Aggregate("max", column.name)]
        incremental = None
        if request.incremental_column:
            incremental = ctx.column(request.incremental_column, "incremental_column")
            aggregates.append(Aggregate("max", incremental.name))
        values = ctx.aggregate(aggregates)
        low, high = values[0], values[1]
        handover = format_watermark(ctx.capped(values[2], incremental)) if incremental is not None else None
        if low is None:
            return None
        plan = ChunkPlan.build(low, high, request.chunk_size or 1, column.arrow_type, handover)
        ctx.log(
            f"backfill plan: {column.name} {format_watermark(low)}..{format_watermark(high)} in {plan.total} "
            f"chunks of {request.chunk_size}{' days' if is_temporal(column.arrow_type) else ''}"
        )
        return plan

    def _handover(
        self, ctx: LoadContext, plan: ChunkPlan, *, rows: int, bytes_written: int, version: int | None
    ) -> LoadResult:
        ctx.log(f"backfill complete: next strategy {HANDOVER_STRATEGY}, watermark {plan.handover}")
        return ctx.result(
            rows_read=rows,
            rows_written=rows,
            bytes_written=bytes_written,
            watermark_before=ctx.request.incremental_value,
            watermark_after=plan.handover,
            delta_version=version,
            next_load_strategy=HANDOVER_STRATEGY,
            chunks_done=plan.total,
            chunks_total=plan.total,
            committed=rows > 0,
        )
