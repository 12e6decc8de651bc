"""What a dialect's catalog module reports about one table, whatever the source."""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from dataloader_contract.errors import UnsupportedTypeError

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


def build_tables(
    schema: str | None,
    stats: Sequence[TableStats],
    columns: Iterable[tuple[str, CatalogColumn]],
    keys: Iterable[UniqueKey],
    pattern: str | None = None,
) -> list[CatalogTable]:
    """CatalogTables from a dialect's rows: `columns` as (table, column) pairs in ordinal order."""
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
