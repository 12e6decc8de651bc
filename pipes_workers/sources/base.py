"""The source-reader interface: one implementation per SQL dialect, looked up by `db_type`.

A reader turns a table (plus typed filter conditions) into an Arrow RecordBatchReader whose schema
is the faithful Arrow mapping of the source columns. Control-row text never reaches SQL unquoted:
identifiers go through `quote_identifier`, values are typed Python objects rendered by the reader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pyarrow as pa

ComparisonOp = Literal[">", ">=", "<", "<=", "="]
AggregateFn = Literal["min", "max", "count"]

DEFAULT_BATCH_ROWS = 131_072


@dataclass(frozen=True)
class SourceColumn:
    """One source column: its name, the source's own type text, and the Arrow type it maps to."""

    name: str
    source_type: str
    arrow_type: pa.DataType
    nullable: bool = True


@dataclass(frozen=True)
class Condition:
    """`column <op> value`, with `value` a typed Python object (int, Decimal, date, datetime, str…)."""

    column: str
    op: ComparisonOp
    value: Any


@dataclass(frozen=True)
class RowFilter:
    """Conditions joined by AND; with `or_null_column`, rows whose column IS NULL also match."""

    conditions: tuple[Condition, ...] = ()
    or_null_column: str | None = None


@dataclass(frozen=True)
class Aggregate:
    """An aggregate to compute over the (filtered) table: MIN/MAX of a column, or COUNT(*)."""

    fn: AggregateFn
    column: str | None = None


class PendingCount:
    """A row count that may still be running: `result()` waits for it (and raises its error)."""

    def __init__(self, wait: Callable[[], int]) -> None:
        self._wait = wait
        self._value: int | None = None

    def result(self) -> int:
        """The count, once it is done."""
        if self._value is None:
            self._value = self._wait()
        return self._value


class SourceReader(ABC):
    """Reads one source database. Open with `open_reader(source_config)`; close when done."""

    dialect: ClassVar[str]

    @abstractmethod
    def quote_identifier(self, name: str) -> str:
        """Quote one identifier with the dialect's rules (embedded quotes doubled)."""

    @abstractmethod
    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        """The table's columns in ordinal order; PermanentLoadError naming the table when it is missing,
        UnsupportedTypeError naming the column when a type has no faithful mapping."""

    @abstractmethod
    def read(
        self,
        schema: str | None,
        table: str,
        *,
        columns: Sequence[SourceColumn],
        row_filter: RowFilter | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> pa.RecordBatchReader:
        """Stream the selected rows; every batch has exactly `arrow_schema(columns)`. Bounded memory."""

    @abstractmethod
    def aggregate(
        self,
        schema: str | None,
        table: str,
        aggregates: Sequence[Aggregate],
        row_filter: RowFilter | None = None,
    ) -> tuple[Any, ...]:
        """Compute the aggregates in one query; MIN/MAX come back as typed Python values (None when empty)."""

    def count_before_read(self, schema: str | None, table: str) -> PendingCount:
        """Start COUNT(*) of the table in a snapshot taken now, before any later read's; its
        `result()` is the count. Here it runs at once; a reader may run it beside the read."""
        (count,) = self.aggregate(schema, table, [Aggregate("count")])
        return PendingCount(lambda: int(count))

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections."""

    def __enter__(self) -> SourceReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def arrow_schema(columns: Sequence[SourceColumn]) -> pa.Schema:
    """The Arrow schema a reader produces for these columns."""
    return pa.schema([pa.field(c.name, c.arrow_type, nullable=c.nullable) for c in columns])
