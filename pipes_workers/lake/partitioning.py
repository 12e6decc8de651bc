"""Destination partitioning: the control row's `partition_by` as Delta partition columns, the
generated columns derived from a timestamp or date (`day(col)`, `month(col)`, `year(col)`), and the
MERGE predicate term that keeps a merge to the partitions its source rows fall in.

A derived column is stored as text, `_part_day_<col>` = 'YYYY-MM-DD', `_part_month_<col>` =
'YYYY-MM', `_part_year_<col>` = 'YYYY' (a time zone aware column in UTC): text sorts in time order,
reads well in the partition directory names (`_part_month_created_at=2026-03`) and compares as a
plain literal in a predicate. NULL stays NULL (Delta's `__HIVE_DEFAULT_PARTITION__`).

Example:
    >>> Partitioning.parse(["region", "month(created_at)"], table="t").names
    ['region', '_part_month_created_at']
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from dataloader_contract.errors import ConfigurationError
from pipes_workers.lake.schema_conform import quote_column
from pipes_workers.lake.table_facts import quote_identifier

DERIVED_PREFIX = "_part_"
_DERIVED = re.compile(r"^\s*(day|month|year)\s*\((.*)\)\s*$", re.IGNORECASE)
_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
# Above this many distinct values of a partition column in one merge's source, naming them all in
# the predicate costs more than it prunes: the merge then matches on the keys alone.
MAX_PRUNING_VALUES = 1000


@dataclass(frozen=True)
class PartitionColumn:
    """One Delta partition column: a source column as it is, or a unit of one (`unit` set)."""

    name: str
    source: str
    unit: str | None = None


@dataclass(frozen=True)
class Partitioning:
    """A table's partition columns, in order (none: unpartitioned)."""

    columns: tuple[PartitionColumn, ...] = ()

    @classmethod
    def parse(cls, entries: Sequence[str], *, table: str) -> Partitioning:
        """The partitioning a control row's `partition_by` asks for; ConfigurationError naming the entry."""
        columns = []
        for entry in entries:
            match = _DERIVED.match(entry)
            if match is None:
                if not entry.strip() or "(" in entry or ")" in entry:
                    raise ConfigurationError(
                        f"{table}: partition_by entry {entry!r} is neither a column name nor "
                        "day(col) / month(col) / year(col)"
                    )
                columns.append(PartitionColumn(entry, entry))
                continue
            unit, source = match.group(1).lower(), match.group(2).strip()
            if not source:
                raise ConfigurationError(f"{table}: partition_by entry {entry!r} names no column")
            columns.append(PartitionColumn(f"{DERIVED_PREFIX}{unit}_{source}", source, unit))
        names = [c.name for c in columns]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"{table}: partition_by lists a partition column twice: {names}")
        return cls(tuple(columns))

    @property
    def names(self) -> list[str]:
        """The Delta partition column names, in order."""
        return [c.name for c in self.columns]

    @property
    def derived_names(self) -> frozenset[str]:
        """The generated columns this partitioning adds to the rows (not source columns)."""
        return frozenset(c.name for c in self.columns if c.unit is not None)

    def refuse_change(self, stored: Sequence[str], *, uri: str, reload: bool) -> None:
        """ConfigurationError when the table is partitioned by `stored` and this partitioning differs,
        unless this load rewrites the whole table (`reload`)."""
        if list(stored) == self.names or reload:
            return
        was = ", ".join(stored) or "nothing"
        wanted = ", ".join(self.names) or "nothing"
        raise ConfigurationError(
            f"{uri}: partition_by asks for partitions by {wanted}, but the Delta table is partitioned by "
            f"{was}; changing the partitioning rewrites the whole table: set load_full on the control row"
        )

    def problems(self, schema: pa.Schema) -> list[str]:
        """What keeps rows of `schema` from being partitioned: a partition column they lack, a derived
        one whose column is no timestamp or date."""
        found = []
        for column in self.columns:
            index = schema.get_field_index(column.source)
            if index < 0:
                found.append(f"partition_by column {column.source!r} is not a column of the source rows")
                continue
            dtype = schema.field(index).type
            if column.unit is not None and not (pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)):
                found.append(
                    f"partition_by {column.unit}({column.source}) needs a timestamp or date column; "
                    f"{column.source!r} is {dtype}"
                )
        return found

    def with_columns(
        self, data: pa.RecordBatchReader | pa.Table, *, uri: str
    ) -> pa.RecordBatchReader | pa.Table:
        """`data` with the generated partition columns added (replaced when present); ConfigurationError
        naming a partition column the rows lack or a derived one whose column is no timestamp or date."""
        problems = self.problems(data.schema)
        if problems:
            raise ConfigurationError(f"{uri}: {problems[0]}")
        derived = [c for c in self.columns if c.unit is not None]
        if not derived:
            return data
        plain = [n for n in data.schema.names if n not in self.derived_names]
        schema = data.schema.remove_metadata()
        schema = pa.schema(
            [schema.field(n) for n in plain] + [pa.field(c.name, pa.string()) for c in derived]
        )
        if isinstance(data, pa.Table):
            return pa.Table.from_batches([self._derive(b, plain, schema) for b in data.to_batches()], schema)
        return pa.RecordBatchReader.from_batches(schema, self._derived_batches(data, plain, schema))

    def _derived_batches(
        self, data: pa.RecordBatchReader, plain: list[str], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        for batch in data:
            yield self._derive(batch, plain, schema)

    def _derive(self, batch: pa.RecordBatch, plain: list[str], schema: pa.Schema) -> pa.RecordBatch:
        arrays = [batch.column(n) for n in plain]
        for column in self.columns:
            if column.unit is not None:
                arrays.append(pc.strftime(batch.column(column.source), format=_FORMATS[column.unit]))
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def pruning_term(self, rows: pa.Table, *, target: str = "target") -> str | None:
        """A predicate on the target's partition columns that holds for every partition `rows` fall
        in (`target.p IN (...)`, with `OR target.p IS NULL` for NULL), or None when nothing can be
        pruned (unpartitioned, or no column whose values are few and literal-safe)."""
        terms = [_inside(f"{target}.{quote_column(name)}", values) for name, values in self._prunable(rows)]
        return " AND ".join(terms) if terms else None

    def outside_condition(self, rows: pa.Table) -> str | None:
        """The SQL condition (delta-rs's query engine, double-quoted names) that holds for a row in a
        partition `pruning_term(rows)` leaves out, or None when that term prunes nothing."""
        terms = [_outside(quote_identifier(name), values) for name, values in self._prunable(rows)]
        return " OR ".join(terms) if terms else None

    def _prunable(self, rows: pa.Table) -> list[tuple[str, _Values]]:
        """Each partition column of `rows` that can be pruned, with its distinct values as literals."""
        found = []
        for name in self.names:
            if name in rows.column_names:
                values = _values(rows.column(name))
                if values is not None:
                    found.append((name, values))
        return found


@dataclass(frozen=True)
class _Values:
    """A partition column's distinct values: the non-NULL ones as SQL literals, and whether NULL is one."""

    literals: tuple[str, ...]
    has_null: bool


def _values(values: pa.ChunkedArray) -> _Values | None:
    distinct = pc.unique(values)
    if len(distinct) > MAX_PRUNING_VALUES:
        return None
    literals = []
    has_null = False
    for value in distinct.to_pylist():
        if value is None:
            has_null = True
            continue
        literal = sql_literal(value)
        if literal is None:
            return None  # a type with no safe literal: match on the keys alone
        literals.append(literal)
    return _Values(tuple(literals), has_null) if literals or has_null else None


def _inside(column: str, values: _Values) -> str:
    parts = [f"{column} IN ({', '.join(values.literals)})"] if values.literals else []
    if values.has_null:
        parts.append(f"{column} IS NULL")
    return f"({' OR '.join(parts)})"


def _outside(column: str, values: _Values) -> str:
    if not values.literals:
        return f"({column} IS NOT NULL)"
    not_in = f"{column} NOT IN ({', '.join(values.literals)})"
    # NOT IN is NULL for a NULL value: such a row is outside only when NULL is not among the values.
    return f"({not_in})" if values.has_null else f"({not_in} OR {column} IS NULL)"


def sql_literal(value: object) -> str | None:
    """`value` as a SQL literal both MERGE predicates and delta-rs's query engine read the same
    way, or None for a type without one."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, date) and not isinstance(value, datetime):
        return f"DATE '{value.isoformat()}'"
    return None  # decimals, floats, timestamps: DataFusion's coercion of such literals is not relied on
