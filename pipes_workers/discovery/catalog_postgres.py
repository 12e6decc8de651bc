"""PostgreSQL catalog for discovery: tables (not views, not partitions) of one schema with the
planner's estimates, keys, indexed and identity/serial columns; types through the reader's mapping."""

from __future__ import annotations

from functools import partial
from typing import Any

from pipes_workers.discovery.catalog import CatalogTable, UniqueKey, build_tables, mapped_column, read_catalog
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.postgres import TYPE_ITEMS, TYPE_JOINS, quote_pg_identifier
from pipes_workers.sources.postgres_types import CatalogType, arrow_type_for
from pipes_workers.sources.query import qualified_name

# reltuples is -1 until the table is first vacuumed or analysed (PostgreSQL 14+): unknown.
TABLES_SQL = """
SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
COLUMNS_SQL = f"""
SELECT c.relname, a.attname, {TYPE_ITEMS},
       NOT a.attnotnull AS nullable,
       EXISTS (SELECT 1 FROM pg_index i
               WHERE i.indrelid = c.oid AND i.indkey[0] = a.attnum AND i.indisvalid) AS indexed,
       a.attidentity IN ('a', 'd')
           OR coalesce(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%%' AS increasing
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
{TYPE_JOINS}
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, a.attnum
"""
# Primary keys, and unique indexes on plain columns without a predicate (a partial or expression
# index does not make rows unique).
KEYS_SQL = """
SELECT c.relname, i.indisprimary,
       array_agg(a.attname ORDER BY k.ord) AS columns
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = %(schema)s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
GROUP BY c.relname, i.indexrelid, i.indisprimary
"""


def list_tables(reader: SourceReader, schema: str | None, pattern: str | None = None) -> list[CatalogTable]:
    """The schema's tables (the reader's default schema when None) matching `pattern`."""
    schema = schema or reader.schema_for(None) or "public"
    params = {"schema": schema}
    return tables_from_rows(
        schema, *read_catalog(reader, (TABLES_SQL, COLUMNS_SQL, KEYS_SQL), params), pattern
    )


def tables_from_rows(
    schema: str,
    table_rows: list[tuple[Any, ...]],
    column_rows: list[tuple[Any, ...]],
    key_rows: list[tuple[Any, ...]],
    pattern: str | None = None,
) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and KEYS_SQL."""
    columns = []
    for table, name, declared, *type_facts, nullable, indexed, increasing in column_rows:
        label = qualified_name(quote_pg_identifier, schema, table)
        catalog = CatalogType(declared, *type_facts)
        column = mapped_column(
            name,
            declared,
            partial(arrow_type_for, label, name, catalog),
            nullable=bool(nullable),
            indexed=bool(indexed),
            increasing=bool(increasing),
        )
        columns.append((table, column))
    return build_tables(
        schema,
        table_rows,
        columns,
        [UniqueKey(table, tuple(cols), bool(primary)) for table, primary, cols in key_rows],
        pattern,
    )
