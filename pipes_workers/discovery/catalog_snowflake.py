"""Snowflake catalog for discovery: base tables of one schema with information_schema's ROW_COUNT
and BYTES, primary and unique keys from SHOW (declared, not enforced: Snowflake trusts you), and
identity/sequence columns. Snowflake has no indexes: micro-partition pruning on a column's min/max
serves range reads, so every column counts as indexed."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipes_workers.discovery.catalog import (
    CatalogRows,
    CatalogTable,
    build_tables,
    catalog_schema,
    index_keys,
    mapped_column,
)
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.query import qualified_name
from pipes_workers.sources.snowflake import quote_snowflake_identifier
from pipes_workers.sources.snowflake_types import arrow_type_for

TABLES_SQL = (
    "SELECT table_name, row_count, bytes FROM information_schema.tables "
    "WHERE table_schema = %(schema)s AND table_type = 'BASE TABLE'"
)
COLUMNS_SQL = (
    "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable, "
    "is_identity, column_default FROM information_schema.columns "
    "WHERE table_schema = %(schema)s ORDER BY table_name, ordinal_position"
)
# SHOW … KEYS columns: created_on, database_name, schema_name, table_name, column_name,
# key_sequence, constraint_name, …
SHOW_KEYS = "SHOW {kind} KEYS IN SCHEMA {schema}"


def list_tables(reader: SourceReader, schema: str | None, pattern: str | None = None) -> list[CatalogTable]:
    """The schema's base tables (the reader's schema, else PUBLIC) matching `pattern`."""
    schema = catalog_schema(reader, schema, "PUBLIC")
    where = qualified_name(quote_snowflake_identifier, reader.params.database, schema)
    params = {"schema": schema}
    keys = [
        key_row(row, primary=kind == "PRIMARY")
        for kind in ("PRIMARY", "UNIQUE")
        for row in reader.catalog_rows(SHOW_KEYS.format(kind=kind, schema=where))
    ]
    rows = CatalogRows(
        reader.catalog_rows(TABLES_SQL, params), reader.catalog_rows(COLUMNS_SQL, params), keys
    )
    return tables_from_rows(schema, rows, pattern)


def key_row(row: tuple[Any, ...], *, primary: bool) -> tuple[Any, ...]:
    """A SHOW … KEYS row as an `index_keys` row (table, constraint, primary, position, column)."""
    return (row[3], row[6], primary, int(row[5]), row[4])


def tables_from_rows(schema: str, rows: CatalogRows, pattern: str | None = None) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and the two SHOW … KEYS (as `key_row`s)."""
    columns = []
    for table, name, data_type, precision, scale, nullable, identity, default in rows.columns:
        label = qualified_name(quote_snowflake_identifier, schema, table)
        increasing = identity == "YES" or "nextval" in str(default or "").lower()
        column = mapped_column(
            name,
            data_type,
            partial(arrow_type_for, label, name, data_type, precision, scale),
            nullable=nullable == "YES",
            indexed=True,
            increasing=increasing,
        )
        columns.append((table, column))
    return build_tables(schema, rows.tables, columns, index_keys(rows.keys), pattern)
