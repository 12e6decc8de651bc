"""SQL Server catalog for discovery (tested offline: no server runs on the test machines): user
tables of one schema with row counts from sys.partitions and sizes from sys.allocation_units,
primary keys and unfiltered unique indexes, identity columns, columns leading an index."""

from __future__ import annotations

from pipes_workers.discovery.catalog import (
    CatalogRows,
    CatalogTable,
    catalog_schema,
    precision_typed_tables,
    read_catalog,
)
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.literals import mssql_literal
from pipes_workers.sources.mssql import quote_mssql_identifier
from pipes_workers.sources.mssql_types import arrow_type_for

# connectorx takes no parameters: {schema} is an N'' literal (mssql_literal).
TABLES_SQL = """
SELECT t.name,
       (SELECT SUM(p.rows) FROM sys.partitions p WHERE p.object_id = t.object_id AND p.index_id IN (0, 1)),
       (SELECT SUM(a.total_pages) * 8192 FROM sys.partitions p
          JOIN sys.allocation_units a ON a.container_id = p.partition_id WHERE p.object_id = t.object_id)
FROM sys.tables t JOIN sys.schemas s ON s.schema_id = t.schema_id
WHERE s.name = {schema} AND t.is_ms_shipped = 0
"""
COLUMNS_SQL = """
SELECT t.name, c.name, ty.name, c.precision, c.scale, c.is_nullable, c.is_identity,
       CASE WHEN EXISTS (SELECT 1 FROM sys.index_columns ic
                         WHERE ic.object_id = c.object_id AND ic.column_id = c.column_id
                           AND ic.key_ordinal = 1) THEN 1 ELSE 0 END
FROM sys.columns c
JOIN sys.tables t ON t.object_id = c.object_id
JOIN sys.schemas s ON s.schema_id = t.schema_id
JOIN sys.types ty ON ty.user_type_id = c.system_type_id AND ty.user_type_id = ty.system_type_id
WHERE s.name = {schema}
ORDER BY t.name, c.column_id
"""
KEYS_SQL = """
SELECT t.name, i.index_id, i.is_primary_key, ic.key_ordinal, c.name
FROM sys.indexes i
JOIN sys.tables t ON t.object_id = i.object_id
JOIN sys.schemas s ON s.schema_id = t.schema_id
JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id AND ic.key_ordinal > 0
JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id
WHERE s.name = {schema} AND i.is_unique = 1 AND i.has_filter = 0 AND i.is_disabled = 0
ORDER BY t.name, i.index_id, ic.key_ordinal
"""


def catalog_sql(schema: str) -> tuple[str, str, str]:
    """TABLES_SQL, COLUMNS_SQL and KEYS_SQL for `schema`, its name rendered as an N'' literal."""
    literal = mssql_literal(schema)
    return tuple(sql.format(schema=literal) for sql in (TABLES_SQL, COLUMNS_SQL, KEYS_SQL))  # type: ignore[return-value]


def list_tables(reader: SourceReader, schema: str | None, pattern: str | None = None) -> list[CatalogTable]:
    """The schema's user tables (the reader's schema, else dbo) matching `pattern`."""
    schema = catalog_schema(reader, schema, "dbo")
    return tables_from_rows(schema, read_catalog(reader, catalog_sql(schema)), pattern)


def tables_from_rows(schema: str, rows: CatalogRows, pattern: str | None = None) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and KEYS_SQL."""
    return precision_typed_tables(
        schema, rows, pattern, quote_mssql_identifier, arrow_type_for, nullable=bool, identity=bool
    )
