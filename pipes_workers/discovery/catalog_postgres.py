"""PostgreSQL catalog for discovery: tables (not views, not partitions) of one schema with the
planner's estimates, keys, indexed and identity/serial columns; types through the reader's mapping."""

from __future__ import annotations

from functools import partial

from pipes_workers.discovery.catalog import (
    CatalogRows,
    CatalogTable,
    QueryCatalog,
    build_tables,
    index_keys,
    mapped_column,
)
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
# One row per key column of the primary key and of each unique index on plain columns without a
# predicate (a partial or expression index does not make rows unique).
KEYS_SQL = """
SELECT c.relname, i.indexrelid, i.indisprimary, k.ord, a.attname
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = %(schema)s AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
  AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
"""


def tables_from_rows(schema: str, rows: CatalogRows, pattern: str | None = None) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and KEYS_SQL."""
    columns = []
    for table, name, declared, *type_facts, nullable, indexed, increasing in rows.columns:
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
    return build_tables(schema, rows.tables, columns, index_keys(rows.keys), pattern)


# The schema's tables (not views, not partitions; the reader's default schema, else public).
list_tables = QueryCatalog(
    (TABLES_SQL, COLUMNS_SQL, KEYS_SQL), param="schema", default="public", build=tables_from_rows
)
