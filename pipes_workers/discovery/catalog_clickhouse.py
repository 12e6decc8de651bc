"""ClickHouse catalog for discovery: tables of one database (views, dictionaries and temporary
tables left out) with system.tables' row and byte counts. ClickHouse has no unique keys (its
primary key orders parts, it does not reject duplicates), so every table has no key; a column
counts as indexed when it is part of the sorting, primary or partition key (what prunes parts)."""

from __future__ import annotations

from functools import partial

from pipes_workers.discovery.catalog import (
    CatalogRows,
    CatalogTable,
    build_tables,
    catalog_schema,
    mapped_column,
)
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.clickhouse import quote_clickhouse_identifier
from pipes_workers.sources.clickhouse_types import arrow_type_for, parse_type
from pipes_workers.sources.query import qualified_name

# Row and byte counts from the active parts (system.tables' total_rows/total_bytes are newer than
# the 18.16 server the tests run on); a table without parts (empty, or not a MergeTree) has none.
TABLES_SQL = """
SELECT name FROM system.tables
WHERE database = %(database)s AND NOT is_temporary
  AND engine NOT IN ('View', 'MaterializedView', 'LiveView', 'WindowView', 'Dictionary')
"""
PARTS_SQL = """
SELECT table, sum(rows), sum(data_compressed_bytes) FROM system.parts
WHERE database = %(database)s AND active GROUP BY table
"""
# system.columns lists a table's columns in their declared order (no `position` column before 20.x).
COLUMNS_SQL = """
SELECT table, name, type, is_in_sorting_key OR is_in_primary_key OR is_in_partition_key
FROM system.columns WHERE database = %(database)s
"""


def list_tables(reader: SourceReader, schema: str | None, pattern: str | None = None) -> list[CatalogTable]:
    """The database's tables (the reader's database when `schema` is None) matching `pattern`."""
    database = catalog_schema(reader, schema, "default")
    params = {"database": database}
    tables, parts, columns = (
        reader.catalog_rows(sql, params) for sql in (TABLES_SQL, PARTS_SQL, COLUMNS_SQL)
    )
    counts = {table: (rows, size) for table, rows, size in parts}
    table_rows = [(name, *counts.get(name, (None, None))) for (name,) in tables]
    return tables_from_rows(database, CatalogRows(table_rows, columns), pattern)


def tables_from_rows(database: str, rows: CatalogRows, pattern: str | None = None) -> list[CatalogTable]:
    """CatalogTables from (name, rows, bytes) per table and the rows of COLUMNS_SQL (no keys)."""
    columns = [
        (
            table,
            mapped_column(
                name,
                spec,
                partial(
                    arrow_type_for, qualified_name(quote_clickhouse_identifier, database, table), name, spec
                ),
                nullable=parse_type(spec).nullable,
                indexed=bool(indexed),
            ),
        )
        for table, name, spec, indexed in rows.columns
    ]
    return build_tables(database, rows.tables, columns, [], pattern)
