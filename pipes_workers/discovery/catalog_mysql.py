"""MySQL/MariaDB catalog for discovery: base tables of one database with information_schema's
estimates (TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH), keys, indexed and AUTO_INCREMENT columns."""

from __future__ import annotations

from collections import defaultdict
from functools import partial
from typing import Any

from pipes_workers.discovery.catalog import (
    CatalogRows,
    CatalogTable,
    QueryCatalog,
    UniqueKey,
    build_tables,
    mapped_column,
)
from pipes_workers.sources.mysql import quote_mysql_identifier
from pipes_workers.sources.mysql_types import MySQLType, arrow_type_for
from pipes_workers.sources.query import qualified_name

TABLES_SQL = """
SELECT TABLE_NAME, TABLE_ROWS, DATA_LENGTH + INDEX_LENGTH
FROM information_schema.TABLES WHERE TABLE_SCHEMA = %(schema)s AND TABLE_TYPE = 'BASE TABLE'
"""
COLUMNS_SQL = """
SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE, EXTRA
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %(schema)s ORDER BY TABLE_NAME, ORDINAL_POSITION
"""
# COLUMN_NAME is NULL for a functional key part; SUB_PART is set for a prefix of the column.
INDEXES_SQL = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %(schema)s
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""


def tables_from_rows(schema: str, rows: CatalogRows, pattern: str | None = None) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and INDEXES_SQL (`rows.keys`)."""
    indexes: dict[tuple[str, str], list[tuple[str | None, Any]]] = defaultdict(list)
    for table, index, _non_unique, _seq, column, sub_part in rows.keys:
        indexes[(table, index)].append((column, sub_part))
    leading = {(table, parts[0][0]) for (table, _), parts in indexes.items() if parts[0][0] is not None}
    unique_names = {(r[0], r[1]) for r in rows.keys if int(r[2]) == 0}
    keys = [
        UniqueKey(table, tuple(str(c) for c, _ in parts), index == "PRIMARY")
        for (table, index), parts in indexes.items()
        if (table, index) in unique_names and all(c is not None and sub is None for c, sub in parts)
    ]
    columns = []
    for table, name, data_type, column_type, precision, scale, nullable, extra in rows.columns:
        label = qualified_name(quote_mysql_identifier, schema, table)
        t = MySQLType(str(data_type).lower(), str(column_type).lower(), precision, scale)
        column = mapped_column(
            name,
            t.column_type,
            partial(arrow_type_for, label, name, t),
            nullable=nullable == "YES",
            indexed=(table, name) in leading,
            increasing="auto_increment" in str(extra).lower(),
        )
        columns.append((table, column))
    return build_tables(schema, rows.tables, columns, keys, pattern)


# The database's base tables (the reader's database when none is named).
list_tables = QueryCatalog(
    (TABLES_SQL, COLUMNS_SQL, INDEXES_SQL), param="schema", default="", build=tables_from_rows
)
