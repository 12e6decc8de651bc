"""Snowflake catalog for discovery: base tables of one schema with information_schema's ROW_COUNT
and BYTES, primary and unique keys from SHOW (declared, not enforced: Snowflake trusts you), and
identity/sequence columns. Snowflake has no indexes: micro-partition pruning on a column's min/max
serves range reads, so every column counts as indexed."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipes_workers.discovery.catalog import CatalogTable, UniqueKey, build_tables, index_keys, mapped_column
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
    schema = schema or reader.schema_for(None) or "PUBLIC"
    where = qualified_name(quote_snowflake_identifier, reader.params.database, schema)
    params = {"schema": schema}
    return tables_from_rows(
        schema,
        reader.catalog_rows(TABLES_SQL, params),
        reader.catalog_rows(COLUMNS_SQL, params),
        reader.catalog_rows(SHOW_KEYS.format(kind="PRIMARY", schema=where)),
        reader.catalog_rows(SHOW_KEYS.format(kind="UNIQUE", schema=where)),
        pattern,
    )


def _keys(rows: list[tuple[Any, ...]], *, primary: bool) -> list[UniqueKey]:
    return index_keys((r[3], r[6], primary, int(r[5]), r[4]) for r in rows)


def tables_from_rows(
    schema: str,
    table_rows: list[tuple[Any, ...]],
    column_rows: list[tuple[Any, ...]],
    primary_rows: list[tuple[Any, ...]],
    unique_rows: list[tuple[Any, ...]],
    pattern: str | None = None,
) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and the two SHOW … KEYS."""
    columns = []
    for table, name, data_type, precision, scale, nullable, identity, default in column_rows:
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
    keys = _keys(primary_rows, primary=True) + _keys(unique_rows, primary=False)
    return build_tables(schema, table_rows, columns, keys, pattern)
