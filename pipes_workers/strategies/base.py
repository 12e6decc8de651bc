"""The strategy interface, the registry, and the load's session every strategy is handed (LoadContext).

A strategy reads the source through `ctx.reader` and commits to `ctx.destination` — one commit per
load (per chunk for chunked_backfill) — and says what it did by filling the contract's LoadResult
(`ctx.result(...)`, `ctx.written(...)`); `load.py` adds what the load measured around it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, PermanentLoadError
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadResult
from dataloader_contract.vocabulary import LOAD_STRATEGIES
from pipes_workers.column_hashing import ColumnHasher
from pipes_workers.lake.history import CloseMissing, apply_history, has_history
from pipes_workers.lake.markers import CommitMarker, DeltaState
from pipes_workers.lake.schema_conform import Rows
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.writes import WriteOutcome
from pipes_workers.sources.base import Aggregate, RowFilter, SourceColumn, SourceReader
from pipes_workers.strategies.stream import TrackedStream
from pipes_workers.watermark import cap_watermark, format_watermark, parse_watermark, watermark_cap

Log = Callable[[str], None]
# What a history (scd2) commit reports in its metrics, as LoadResult fields.
VERSION_COUNTS = ("versions_added", "versions_closed")


@dataclass
class LoadContext:
    """One load's session: the request, the open source, the Delta session (the table opened once)
    and the state read from it. Handed to the strategy, then to the checks."""

    request: LoadRequest
    reader: SourceReader
    destination: DeltaSession
    state: DeltaState
    columns: list[SourceColumn]
    load_start: datetime
    log: Log
    strategy_name: str = ""
    # New source columns schema_policy discard_new leaves out of `columns` (the drift check names them).
    discarded_columns: tuple[SourceColumn, ...] = ()
    hasher: ColumnHasher | None = None  # hash_columns: applied to every row read from the source

    def column(self, name: str | None, role: str) -> SourceColumn:
        """The source column `name` (the control-row field `role` names it); a clear error when missing."""
        if not name:
            raise ConfigurationError(f"{self.request.control_key}: {role} is not set")
        for col in self.columns:
            if col.name == name:
                return col
        raise PermanentLoadError(
            f"{self.request.control_key}: {role} {name!r} is not a column of {self.table_label}"
        )

    def positive_setting(self, name: str) -> int:
        """The control-row setting `name` (chunk_size, rolling_window_days); ConfigurationError naming it
        unless it is a positive number."""
        value = getattr(self.request, name)
        if not value or value <= 0:
            raise ConfigurationError(f"{self.request.control_key}: {name} must be positive, got {value!r}")
        return int(value)

    def incremental_start(self) -> tuple[SourceColumn, Any]:
        """The incremental column and the typed watermark to read past (`starting_watermark`)."""
        column = self.column(self.request.incremental_column, "incremental_column")
        if self.request.load_full and self.request.keeps_history:
            return column, None  # a history table's load_full re-reads every row (no overwrite)
        return column, self.starting_watermark(column)

    @property
    def table_label(self) -> str:
        """schema.table as text for messages."""
        req = self.request
        return f"{req.source_schema}.{req.source_table}" if req.source_schema else req.source_table

    def read(self, row_filter: RowFilter | None, *, track: str | None = None) -> TrackedStream:
        """Stream the source rows matching `row_filter`, counting rows and tracking column `track`."""
        batches = self.source_batches(self.columns, row_filter)
        return TrackedStream(batches, track=track, log=self.log, keys=tuple(self.request.primary_keys))

    def source_batches(
        self, columns: Sequence[SourceColumn], row_filter: RowFilter | None
    ) -> pa.RecordBatchReader:
        """The source's `columns` of the rows matching `row_filter`, as they land: every read of the
        load passes here, so hash_columns are hashed before anything else sees the rows."""
        batches = self.reader.read(
            self.request.source_schema, self.request.source_table, columns=columns, row_filter=row_filter
        )
        return self.hasher.stream(batches) if self.hasher is not None else batches

    @property
    def landed_columns(self) -> list[SourceColumn]:
        """The columns read, typed as they land (hashed ones as strings)."""
        return self.hasher.landed(self.columns) if self.hasher is not None else self.columns

    def aggregate(
        self, aggregates: Sequence[Aggregate], row_filter: RowFilter | None = None
    ) -> tuple[Any, ...]:
        """One aggregate query over the source table."""
        return self.reader.aggregate(
            self.request.source_schema, self.request.source_table, aggregates, row_filter
        )

    def merge(self, rows: Rows, marker: CommitMarker, *, window: CloseMissing | None = None) -> WriteOutcome:
        """MERGE `rows` on the primary keys in one commit: an upsert, or with history_mode scd2 new
        versions (lake/history.py). `window`: the rows outside it are not the source's to judge
        (rolling; None for the others): without history, destination rows inside it that the source
        lacks are deleted and rows older than it removed; with history, only those inside are closed."""
        request = self.request
        if not request.keeps_history:
            return self.destination.merge(
                rows, request.primary_keys, marker, delete_not_in_source=window is not None
            )
        if request.load_full and window is None:
            window = CloseMissing()  # every current row the whole source lacks was deleted
        return apply_history(
            self.destination,
            rows,
            request.primary_keys,
            marker,
            changed_at=self.load_start,
            valid_from_column=request.incremental_column if request.load_strategy != "rolling" else None,
            close_missing=window,
            replace=request.load_full and not has_history(self.destination.stored_schema()),
        )

    def marker(
        self, *, watermark: str | None, chunk: dict[str, Any] | None = None, offset: int = 0
    ) -> CommitMarker:
        """The commit marker of this load's next commit (`offset` counts earlier commits of this run)."""
        return CommitMarker(
            control_key=self.request.control_key,
            txn_version=self.state.next_txn_version + offset,
            strategy=self.strategy_name or self.request.load_strategy,
            run_id=self.request.run_id,
            watermark=watermark,
            chunk=chunk,
        )

    def starting_watermark(self, column: SourceColumn) -> Any:
        """The watermark to read from: the control row's, unless the Delta table's is ahead (exactly-once)."""
        control = parse_watermark(self.request.incremental_value, column.arrow_type, column=column.name)
        try:
            delta = parse_watermark(self.state.last_watermark, column.arrow_type, column=column.name)
        except ConfigurationError:
            self.log(
                f"ignoring the Delta commit's watermark {self.state.last_watermark!r}: not a {column.name} value"
            )
            delta = None
        if delta is not None and (control is None or delta > control):
            self.log(
                f"Delta table is ahead of the control row: watermark {format_watermark(delta)} from the last "
                f"commit wins over {format_watermark(control)} (the previous run committed but was not recorded)"
            )
            return delta
        return control

    def capped(self, value: Any, column: SourceColumn) -> Any:
        """`value` capped at load start + margin for temporal columns; logs when the cap applies."""
        cap = watermark_cap(self.load_start, column.arrow_type)
        result, was_capped = cap_watermark(value, cap)
        if was_capped:
            self.log(
                f"watermark capped: source MAX({column.name}) = {format_watermark(value)} is beyond the load "
                f"start plus margin; storing {format_watermark(result)} instead"
            )
        return result

    def result(self, **fields: Any) -> LoadResult:
        """This load's LoadResult with `fields` (LoadResult's own names) filled by the strategy."""
        return LoadResult(
            control_key=self.request.control_key,
            strategy=self.strategy_name or self.request.load_strategy,  # type: ignore[arg-type]
            **fields,
        )

    def written(
        self,
        stream: TrackedStream,
        commit: WriteOutcome,
        *,
        before: str | None,
        after: str | None,
        **fields: Any,
    ) -> LoadResult:
        """The result of a load that committed `stream`'s rows in `commit`, watermark `before` -> `after`."""
        return self.result(
            rows_read=stream.rows,
            rows_written=stream.rows,
            bytes_written=commit.bytes_written,
            watermark_before=before,
            watermark_after=after,
            delta_version=commit.delta_version,
            null_incremental_rows=stream.null_rows,
            committed=True,
            **{name: commit.metrics[name] for name in VERSION_COUNTS if name in commit.metrics},
            **fields,
        )


class LoadStrategy(ABC):
    """One way of loading a table. Subclasses set `name` and register with `@register`."""

    name: ClassVar[str]

    @abstractmethod
    def run(self, ctx: LoadContext) -> LoadResult:
        """Read the source and commit to the destination.

        Args:
            ctx: the load's session.

        Returns:
            The LoadResult's strategy fields: rows, watermark, commit, chunks, the source count
            when the read itself was one.
        """


STRATEGIES: dict[str, type[LoadStrategy]] = {}


def register(cls: type[LoadStrategy]) -> type[LoadStrategy]:
    """Class decorator: add a strategy to the registry under its `name`."""
    if cls.name not in LOAD_STRATEGIES:
        raise ValueError(f"strategy name {cls.name!r} is not one of {LOAD_STRATEGIES}")
    STRATEGIES[cls.name] = cls
    return cls


def get_strategy(name: str) -> LoadStrategy:
    """An instance of the registered strategy `name`; ConfigurationError listing the known names."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ConfigurationError(f"unknown load strategy {name!r}; known strategies: {known}") from None


def empty_result(ctx: LoadContext, watermark: str | None, **fields: Any) -> LoadResult:
    """The result of a load that wrote nothing: watermark unchanged, the table's current version."""
    ctx.log("source returned no rows: nothing written, watermark unchanged")
    return ctx.result(
        watermark_before=watermark, watermark_after=watermark, delta_version=ctx.state.version, **fields
    )


def reads_whole_source(request: LoadRequest, strategy_name: str) -> bool:
    """True when the strategy's read is itself the source count (full without a bound, rolling)."""
    if strategy_name == "rolling":
        return True
    return strategy_name == "full" and not (
        request.load_strategy == "append_only" and request.incremental_column
    )
