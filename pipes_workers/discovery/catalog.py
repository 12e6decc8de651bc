"""What a dialect's catalog module reports about one table, whatever the source."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.query import qualified_name

KeyOrigin = str  # "primary key" | "unique index" | "" (none)


@dataclass(frozen=True)
class CatalogColumn:
    """One column: its source type, the Arrow type the loader maps it to (None when refused, with
    the loader's own reason), NOT NULL, whether it leads an index, and whether the source itself
    makes it increase on every insert (identity, serial, AUTO_INCREMENT)."""

    name: str
    source_type: str
    arrow_type: pa.DataType | None
    nullable: bool = True
    indexed: bool = False
    increasing: bool = False
    refusal: str | None = None


@dataclass(frozen=True)
class CatalogTable:
    """One table: estimated rows and bytes (from the catalog's statistics, not a count), its key
    (a primary key constraint, else a unique index on NOT NULL columns, else empty) and columns."""

    schema: str | None
    name: str
    estimated_rows: int | None  # None: the source keeps no statistics yet (never analysed)
    estimated_bytes: int | None
    primary_key: tuple[str, ...] = ()
    key_origin: KeyOrigin = ""
    columns: tuple[CatalogColumn, ...] = field(default_factory=tuple)

    def column(self, name: str) -> CatalogColumn | None:
        """The column called `name`, if any."""
        return next((c for c in self.columns if c.name == name), None)

    @property
    def refused(self) -> tuple[CatalogColumn, ...]:
        """The columns the loader would refuse."""
        return tuple(c for c in self.columns if c.refusal is not None)


def mapped_column(
    name: str, source_type: str, mapping: Callable[[], pa.DataType], **facts: bool
) -> CatalogColumn:
    """A CatalogColumn typed by the reader's own rule: `mapping` calls the dialect's
    `arrow_type_for`, whose refusal message (naming table, column and type) is kept."""
    try:
        return CatalogColumn(name, source_type, mapping(), **facts)
    except UnsupportedTypeError as exc:
        return CatalogColumn(name, source_type, None, refusal=str(exc), **facts)


def best_unique_key(
    primary_key: Iterable[str], unique_indexes: Iterable[tuple[str, ...]], not_null: set[str]
) -> tuple[tuple[str, ...], KeyOrigin]:
    """The primary key constraint, else the narrowest unique index whose columns are all NOT NULL
    (ties broken by name order), else no key."""
    pk = tuple(primary_key)
    if pk:
        return pk, "primary key"
    candidates = sorted(
        (tuple(i) for i in unique_indexes if i and set(i) <= not_null), key=lambda i: (len(i), i)
    )
    return (candidates[0], "unique index") if candidates else ((), "")


@dataclass(frozen=True)
class CatalogRows:
    """A dialect's catalog row sets: `tables` as (name, estimated rows, estimated bytes), `columns`
    and `keys` in the dialect's own row shape (keys empty when the source has none)."""

    tables: list[tuple[Any, ...]]
    columns: list[tuple[Any, ...]]
    keys: list[tuple[Any, ...]] = field(default_factory=list)


def catalog_schema(reader: SourceReader, schema: str | None, default: str) -> str:
    """The schema to list: `schema`, else the reader's default schema, else `default`."""
    return schema or reader.schema_for(None) or default


def read_catalog(reader: SourceReader, queries: Sequence[str], params: Any = None) -> CatalogRows:
    """CatalogRows from the tables, columns and keys queries, run in order on the reader's session."""
    tables, columns, keys = (reader.catalog_rows(sql, params) for sql in queries)
    return CatalogRows(tables, columns, keys)


@dataclass(frozen=True)
class QueryCatalog:
    """`list_tables` of a dialect whose tables, columns and keys `queries` take the schema as the one
    named parameter `param`, its rows turned into CatalogTables by `build` (`tables_from_rows`)."""

    queries: tuple[str, str, str]
    param: str
    default: str  # the schema when neither the caller nor the reader names one
    build: Callable[[str, CatalogRows, str | None], list[CatalogTable]]

    def __call__(
        self, reader: SourceReader, schema: str | None, pattern: str | None = None
    ) -> list[CatalogTable]:
        """The schema's tables (`schema`, else the reader's, else `default`) matching `pattern`."""
        schema = catalog_schema(reader, schema, self.default)
        return self.build(schema, read_catalog(reader, self.queries, {self.param: schema}), pattern)


def precision_typed_tables(
    schema: str,
    rows: CatalogRows,
    pattern: str | None,
    quote: Callable[[str], str],
    arrow_type_for: Callable[[str, str, str, Any, Any], pa.DataType],
    *,
    nullable: Callable[[Any], bool],
    identity: Callable[[Any], bool],
) -> list[CatalogTable]:
    """CatalogTables from `precision_typed_columns` rows and `index_keys` rows (SQL Server and
    Oracle catalogs)."""
    columns = precision_typed_columns(
        schema, rows.columns, quote, arrow_type_for, nullable=nullable, identity=identity
    )
    return build_tables(schema, rows.tables, columns, index_keys(rows.keys), pattern)


def precision_typed_columns(
    schema: str,
    rows: Iterable[tuple[Any, ...]],
    quote: Callable[[str], str],
    arrow_type_for: Callable[[str, str, str, Any, Any], pa.DataType],
    *,
    nullable: Callable[[Any], bool],
    identity: Callable[[Any], bool],
) -> list[tuple[str, CatalogColumn]]:
    """(table, column) pairs from rows (table, column, data type, precision, scale, nullable,
    identity, indexed), typed by a reader's `arrow_type_for(label, column, type, precision, scale)`
    (SQL Server and Oracle catalogs)."""
    result = []
    for table, name, data_type, precision, scale, is_nullable, is_identity, indexed in rows:
        label = qualified_name(quote, schema, table)
        column = mapped_column(
            name,
            data_type,
            partial(arrow_type_for, label, name, data_type, precision, scale),
            nullable=nullable(is_nullable),
            indexed=bool(indexed),
            increasing=identity(is_identity),
        )
        result.append((table, column))
    return result


def matches(name: str, pattern: str | None) -> bool:
    """Shell-style table-name filter (`--tables 'film*'`); case-sensitive; None matches all."""
    return pattern is None or fnmatch.fnmatchcase(name, pattern)


@dataclass(frozen=True)
class TableStats:
    """A table's name and the catalog's estimates (None when unknown)."""

    name: str
    rows: int | None
    size_bytes: int | None


@dataclass(frozen=True)
class UniqueKey:
    """A primary key constraint (`primary=True`) or a unique index, its columns in key order."""

    table: str
    columns: tuple[str, ...]
    primary: bool


def index_keys(rows: Iterable[tuple[str, Any, Any, Any, str]]) -> list[UniqueKey]:
    """UniqueKeys from unique-index rows (table, index, is primary, position, column), one row per
    key column, in any order."""
    parts: dict[tuple[str, Any, bool], list[tuple[Any, str]]] = defaultdict(list)
    for table, index, primary, position, column in rows:
        parts[(table, index, bool(primary))].append((position, column))
    return [
        UniqueKey(t, tuple(c for _, c in sorted(cols)), primary) for (t, _, primary), cols in parts.items()
    ]


def build_tables(
    schema: str | None,
    table_rows: Iterable[tuple[str, int | None, int | None]],
    columns: Iterable[tuple[str, CatalogColumn]],
    keys: Iterable[UniqueKey],
    pattern: str | None = None,
) -> list[CatalogTable]:
    """CatalogTables from a dialect's rows: `table_rows` as (name, estimated rows, estimated bytes),
    `columns` as (table, column) pairs in ordinal order."""
    stats = [TableStats(*row) for row in table_rows]
    by_table: dict[str, list[CatalogColumn]] = defaultdict(list)
    for table, column in columns:
        by_table[table].append(column)
    keys_of: dict[str, list[UniqueKey]] = defaultdict(list)
    for key in keys:
        keys_of[key.table].append(key)
    result = []
    for s in sorted(stats, key=lambda s: s.name):
        if not matches(s.name, pattern):
            continue
        cols = by_table.get(s.name, [])
        primary = next((k.columns for k in keys_of[s.name] if k.primary), ())
        unique = [k.columns for k in keys_of[s.name] if not k.primary]
        key, origin = best_unique_key(primary, unique, {c.name for c in cols if not c.nullable})
        rows = None if s.rows is None or s.rows < 0 else int(s.rows)
        size = None if s.size_bytes is None or s.size_bytes < 0 else int(s.size_bytes)
        result.append(CatalogTable(schema, s.name, rows, size, key, origin, tuple(cols)))
    return result
