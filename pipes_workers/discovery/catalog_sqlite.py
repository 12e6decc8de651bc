"""SQLite catalog for discovery: tables of one attached database (default `main`). SQLite keeps no
row estimates, so rows are counted (a local file: cheap next to a load); sizes come from the
`dbstat` table when SQLite was built with it, else unknown. A column increases by itself only as an
`INTEGER PRIMARY KEY AUTOINCREMENT` (a plain rowid may reuse the highest id after a delete)."""

from __future__ import annotations

import re
from functools import partial
from typing import Any

from pipes_workers.discovery.catalog import (
    CatalogColumn,
    CatalogTable,
    UniqueKey,
    build_tables,
    catalog_schema,
    mapped_column,
)
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.sqlite import quote_sqlite_identifier
from pipes_workers.sources.sqlite_types import arrow_type_for

_AUTOINCREMENT = re.compile(r"\bAUTOINCREMENT\b", re.IGNORECASE)


def _master(schema: str) -> str:
    return f"{quote_sqlite_identifier(schema)}.sqlite_master"


def list_tables(reader: SourceReader, schema: str | None, pattern: str | None = None) -> list[CatalogTable]:
    """The database's tables (not SQLite's own) matching `pattern`."""
    schema = catalog_schema(reader, schema, "main")
    q = quote_sqlite_identifier
    tables = reader.catalog_rows(
        f"SELECT name, sql FROM {_master(schema)} WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    )
    sizes = _sizes(reader, schema)
    stats, columns, keys = [], [], []
    for name, create_sql in tables:
        (rows,) = reader.catalog_rows(f"SELECT count(*) FROM {q(schema)}.{q(name)}")[0]
        stats.append((name, rows, sizes.get(name)))
        info = reader.catalog_rows(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?, ?) ORDER BY cid', (name, schema)
        )
        index_list = reader.catalog_rows(
            'SELECT name, "unique", partial FROM pragma_index_list(?, ?)', (name, schema)
        )
        index_columns = {
            index: [c for (c,) in reader.catalog_rows(
                "SELECT name FROM pragma_index_info(?, ?) ORDER BY seqno", (index, schema)
            )]
            for index, _unique, _partial in index_list
        }  # fmt: skip
        table_columns, table_keys = table_from_pragmas(
            name, create_sql or "", info, index_list, index_columns
        )
        columns += [(name, c) for c in table_columns]
        keys += table_keys
    return build_tables(schema, stats, columns, keys, pattern)


def _sizes(reader: SourceReader, schema: str) -> dict[str, int]:
    try:
        return dict(reader.catalog_rows("SELECT name, sum(pgsize) FROM dbstat(?) GROUP BY name", (schema,)))
    except Exception:  # SQLite built without SQLITE_ENABLE_DBSTAT_VTAB: sizes unknown
        return {}


def table_from_pragmas(
    table: str,
    create_sql: str,
    info: list[tuple[Any, ...]],
    index_list: list[tuple[Any, ...]],
    index_columns: dict[str, list[str | None]],
) -> tuple[list[CatalogColumn], list[UniqueKey]]:
    """Columns and keys from `pragma_table_info`, `pragma_index_list` and `pragma_index_info` rows."""
    pk = tuple(name for name, _type, _nn, pos in sorted(info, key=lambda r: r[3]) if pos)
    rowid_alias = len(pk) == 1 and any(n == pk[0] and (t or "").upper() == "INTEGER" for n, t, _, _ in info)
    leading = {cols[0] for cols in index_columns.values() if cols and cols[0] is not None}
    if rowid_alias:
        leading.add(pk[0])
    keys = [UniqueKey(table, pk, True)] if pk else []
    keys += [
        UniqueKey(table, tuple(str(c) for c in index_columns[index]), False)
        for index, unique, partial_index in index_list
        if unique and not partial_index and index_columns[index] and None not in index_columns[index]
    ]
    columns = [
        mapped_column(
            name,
            declared or "",
            partial(arrow_type_for, quote_sqlite_identifier(table), name, declared or ""),
            # An INTEGER PRIMARY KEY is the rowid: never NULL whatever it declares.
            nullable=not notnull and not (rowid_alias and name == pk[0]),
            indexed=name in leading,
            increasing=rowid_alias and name == pk[0] and bool(_AUTOINCREMENT.search(create_sql)),
        )
        for name, declared, notnull, _pos in info
    ]
    return columns, keys
