"""StreamingReader: the bookkeeping every reader shares — its open streams, closing them, turning a
driver's batch iterator into a bounded, producer-threaded RecordBatchReader with errors mapped, the
table label used in messages, and the columns `columns()` already read (so `aggregate()` does not
query the catalog again)."""

from __future__ import annotations

import functools
import threading
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, LoadError, PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import (
    DEFAULT_BATCH_ROWS,
    Aggregate,
    RowFilter,
    SourceColumn,
    SourceReader,
    arrow_schema,
)
from pipes_workers.sources.batches import BoundedStream, cast_batch, convert_array
from pipes_workers.sources.failures import classify
from pipes_workers.sources.literals import Dialect
from pipes_workers.sources.literals import render as literal
from pipes_workers.sources.query import aggregate_list, qualified_name, where_clause
from pipes_workers.sources.spatial import geometry_of, is_srid

# Interpreter-level exits pass through; anything else a driver raises (connectorx reports some
# failures as a Rust panic, a BaseException) becomes a LoadError naming the table.
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


@dataclass(frozen=True)
class DriverStream:
    """What a driver hands a read: its record batches (iterated in the producer thread) and how to
    release its cursor/connection once the stream ends or is closed."""

    batches: Iterable[pa.RecordBatch]
    release: Callable[[], None]


class StreamingReader(SourceReader):
    """A reader whose `read` streams through a BoundedStream; `close()` stops the streams still open."""

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        self.params = params
        self.queue_depth = queue_depth
        self._streams: set[BoundedStream] = set()
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], list[SourceColumn]] = {}

    def _check_config(self, *, required: Sequence[str] = (), options: frozenset[str] | None = None) -> None:
        """ConfigurationError naming the config key when a `required` db_config_value key is empty or an
        `options` key is not one the driver takes (`options` None: any)."""
        p = self.params
        missing = [key for key in required if not getattr(p, key)]
        if missing:
            raise ConfigurationError(
                f"{p.db_config_key}: db_type {p.db_type!r} needs db_config_value key(s) {', '.join(missing)}"
            )
        unknown = sorted(set(p.options) - options) if options is not None else []
        if unknown:
            raise ConfigurationError(
                f"{p.db_config_key}: unknown {p.db_type} option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(options or ()))}"
            )

    @property
    def _secrets(self) -> tuple[str, ...]:
        """Values to scrub from driver messages (computed on use, never stored in the reader's state)."""
        return self.params.secret_values()

    # The schema of a table when neither the control row nor the source config names one.
    default_schema: ClassVar[str | None] = None

    def schema_for(self, schema: str | None) -> str | None:
        """The schema a table lives in: the control row's, else the source config's, else the reader's
        `default_schema` (a reader whose default depends on the config overrides this)."""
        return schema or self.params.schema or self.default_schema

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """The rows of one catalog query, on the reader's own session (for `dataloader discover`);
        a driver error comes back classified, as the reader's own do."""
        raise ConfigurationError(
            f"{self.params.label}: reading the catalog of a {self.dialect} source is not supported"
        )

    def _table_label(self, schema: str | None, table: str) -> str:
        """`"schema"."table"` quoted in the dialect, for messages and SQL."""
        return qualified_name(self.quote_identifier, self.schema_for(schema), table)

    def _remember(self, schema: str | None, table: str, columns: list[SourceColumn]) -> list[SourceColumn]:
        """Keep what `columns()` found, for `_known_columns`; returns `columns`."""
        self._known[(self.schema_for(schema) or "", table)] = columns
        return columns

    def _known_columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        """The table's columns as `columns()` last read them in this reader (read once if not yet)."""
        known = self._known.get((self.schema_for(schema) or "", table))
        return known if known is not None else self.columns(schema, table)

    literals: ClassVar[Dialect]  # how this source writes filter values

    def select_item(self, column: SourceColumn) -> str:
        """The SELECT expression for one column: its quoted name, unless the reader reads it otherwise."""
        return self.quote_identifier(column.name)

    def _filter(self, schema: str | None, table: str, row_filter: RowFilter | None) -> RowFilter | None:
        """The filter as this source evaluates it (a hook: ClickHouse rounds bounds to whole seconds)."""
        return row_filter

    def _where(self, schema: str | None, table: str, row_filter: RowFilter | None) -> str:
        render = functools.partial(literal, dialect=self.literals)
        return where_clause(self._filter(schema, table, row_filter), self.quote_identifier, render)

    def select_sql(
        self,
        schema: str | None,
        table: str,
        columns: Sequence[SourceColumn],
        row_filter: RowFilter | None,
        *,
        extra: Sequence[str] = (),
    ) -> str:
        """The SELECT that `read` runs: `SELECT <item> AS "c", … [, extra…] FROM "schema"."table" [WHERE …]`.
        A spatial column's SRID companion is read as `ST_SRID(<geometry>)`."""
        label = self._table_label(schema, table)
        if not columns:
            raise ConfigurationError(f"no columns to read from {label}")
        q = self.quote_identifier

        def item(c: SourceColumn) -> str:
            return f"ST_SRID({q(geometry_of(c.name))})" if is_srid(c) else self.select_item(c)

        items = [f"{item(c)} AS {q(c.name)}" for c in columns] + list(extra)
        return f"SELECT {', '.join(items)} FROM {label}{self._where(schema, table, row_filter)}"

    def _aggregate_sql(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row_filter: RowFilter | None
    ) -> str:
        """`SELECT min("a"), count(*) FROM "schema"."table" [WHERE …]`."""
        items = aggregate_list(aggregates, self.quote_identifier)
        return (
            f"SELECT {items} FROM {self._table_label(schema, table)}{self._where(schema, table, row_filter)}"
        )

    # Driver errors an aggregate query maps to a LoadError naming the table (a reader narrows it).
    driver_errors: ClassVar[tuple[type[Exception], ...]] = (Exception,)

    def aggregate(
        self,
        schema: str | None,
        table: str,
        aggregates: Sequence[Aggregate],
        row_filter: RowFilter | None = None,
    ) -> tuple[Any, ...]:
        """One query (`_aggregate_sql`) run by the driver (`_aggregate_row`); its values typed by
        `_typed_aggregates`. A driver error becomes the LoadError of a failed read of the table."""
        label = self._table_label(schema, table)
        sql = self._aggregate_sql(schema, table, aggregates, row_filter)
        try:
            row = self._aggregate_row(sql, label)
        except LoadError:
            raise
        except self.driver_errors as exc:
            raise self._read_error(exc, label) from None
        if row is None:
            return tuple(None for _ in aggregates)
        return self._typed_aggregates(schema, table, aggregates, row)

    def _aggregate_row(self, sql: str, label: str) -> Any:
        """The one row of the aggregate query `sql` (a sequence or a one-row Arrow table), or None."""
        raise NotImplementedError(f"{type(self).__name__} runs no aggregate query")

    def _typed_aggregates(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row: Any
    ) -> tuple[Any, ...]:
        """The aggregate row's values as typed Python values (a reader converts what its driver returns)."""
        return tuple(row)

    def _arrow_aggregates(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row: pa.Table
    ) -> tuple[Any, ...]:
        """The values of a one-row Arrow result, MIN/MAX converted to the columns' Arrow types."""
        label = self._table_label(schema, table)
        known = {c.name: c for c in self._known_columns(schema, table)}
        values = []
        for i, agg in enumerate(aggregates):
            array = row.column(i).combine_chunks()
            if agg.fn in ("min", "max") and agg.column in known:
                array = convert_array(array, known[agg.column].arrow_type, column=agg.column, table=label)
            values.append(array[0].as_py() if len(array) else None)
        return tuple(values)

    @abstractmethod
    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        """Run the SELECT (`label` names the table in messages) on a connection of its own; the driver's
        batches of about `batch_rows` rows. A failure to start is raised as the driver raises it (the
        caller maps it)."""

    def _conform(self, batch: pa.RecordBatch, target: pa.Schema, label: str) -> pa.RecordBatch:
        """A driver batch cast exactly to the declared schema (readers add their own checks)."""
        return cast_batch(batch, target, label)

    def read(
        self,
        schema: str | None,
        table: str,
        *,
        columns: Sequence[SourceColumn],
        row_filter: RowFilter | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> pa.RecordBatchReader:
        label = self._table_label(schema, table)
        sql = self.select_sql(schema, table, columns, row_filter)
        target = arrow_schema(columns)
        try:
            source = self._execute(sql, columns, batch_rows, label)
        except LoadError:
            raise
        except BaseException as exc:
            if isinstance(exc, _PASS_THROUGH):
                raise
            raise self._read_error(exc, label) from None

        def batches() -> Iterator[pa.RecordBatch]:
            for batch in source.batches:
                yield self._conform(batch, target, label)

        return self._stream(
            target, batches, read_error=lambda exc: self._read_error(exc, label), release=source.release
        )

    def _missing_table(self, exc: BaseException) -> bool:
        """Whether a driver error says the table does not exist (each reader knows its driver's words)."""
        return False

    def _classify(self, exc: BaseException, what: str) -> LoadError:
        """A LoadError for a driver error: `<what>: <scrubbed message>`, transient or permanent, with its code."""
        return classify(exc, what=what, secrets=self._secrets)

    def _read_error(self, exc: BaseException, label: str) -> LoadError:
        """The LoadError for a failed read of `label`: "does not exist" when the table is missing."""
        error = self._classify(exc, f"reading {label}")
        if self._missing_table(exc):
            return PermanentLoadError(f"source table {label} does not exist", code=error.code)
        return error

    def _stream(
        self,
        schema: pa.Schema,
        batches: Callable[[], Iterator[pa.RecordBatch]],
        *,
        read_error: Callable[[BaseException], LoadError],
        release: Callable[[], None],
    ) -> pa.RecordBatchReader:
        """Run `batches()` in a producer thread and hand its batches out as a RecordBatchReader.

        Args:
            schema: the schema every batch has.
            batches: opens the driver's iteration (called in the producer thread).
            read_error: maps a driver exception to the LoadError to raise in the consumer.
            release: frees the driver's cursor/connection once the stream ends or is closed.
        """

        def produce() -> Iterator[pa.RecordBatch]:
            try:
                yield from batches()
            except LoadError:
                raise
            except BaseException as exc:
                if isinstance(exc, _PASS_THROUGH):
                    raise
                raise read_error(exc) from None

        def on_close() -> None:
            try:
                release()
            finally:
                with self._lock:
                    self._streams.discard(stream)

        stream = BoundedStream(schema, produce, on_close=on_close, depth=self.queue_depth)
        with self._lock:
            self._streams.add(stream)
        return stream.reader()

    def _close_streams(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()
