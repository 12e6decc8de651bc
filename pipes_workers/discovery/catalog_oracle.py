"""Oracle catalog for discovery (tested offline: no server runs on the test machines): the owner's
tables with the optimizer statistics' NUM_ROWS and NUM_ROWS × AVG_ROW_LEN as size (unknown until
statistics are gathered), primary keys and unique indexes, identity columns (12c+), columns leading
an index. Needs only the ALL_* views the reader's user can see."""

from __future__ import annotations

from pipes_workers.discovery.catalog import CatalogRows, CatalogTable, QueryCatalog, precision_typed_tables
from pipes_workers.sources.oracle import arrow_type_for, quote_oracle_identifier

TABLES_SQL = """
SELECT table_name, num_rows, num_rows * avg_row_len FROM all_tables
WHERE owner = :owner AND temporary = 'N' AND nested = 'NO' AND secondary = 'N'
"""
COLUMNS_SQL = """
SELECT c.table_name, c.column_name, c.data_type, c.data_precision, c.data_scale, c.nullable, c.identity_column,
       CASE WHEN EXISTS (SELECT 1 FROM all_ind_columns ic
                         WHERE ic.table_owner = c.owner AND ic.table_name = c.table_name
                           AND ic.column_name = c.column_name AND ic.column_position = 1)
            THEN 1 ELSE 0 END
FROM all_tab_columns c
WHERE c.owner = :owner
ORDER BY c.table_name, c.column_id
"""
# Unique indexes (a primary key has one) on plain columns; the primary key's own flagged.
KEYS_SQL = """
SELECT i.table_name, i.index_name,
       CASE WHEN EXISTS (SELECT 1 FROM all_constraints k WHERE k.owner = i.table_owner
                         AND k.table_name = i.table_name AND k.constraint_type = 'P'
                         AND k.index_name = i.index_name) THEN 1 ELSE 0 END,
       ic.column_position, ic.column_name
FROM all_indexes i
JOIN all_ind_columns ic ON ic.index_owner = i.owner AND ic.index_name = i.index_name
WHERE i.table_owner = :owner AND i.uniqueness = 'UNIQUE' AND i.index_type = 'NORMAL'
ORDER BY i.table_name, i.index_name, ic.column_position
"""


def tables_from_rows(owner: str, rows: CatalogRows, pattern: str | None = None) -> list[CatalogTable]:
    """CatalogTables from the rows of TABLES_SQL, COLUMNS_SQL and KEYS_SQL."""
    return precision_typed_tables(
        owner,
        rows,
        pattern,
        quote_oracle_identifier,
        arrow_type_for,
        nullable=lambda v: v == "Y",
        identity=lambda v: v == "YES",
    )


# The owner's tables (the reader's schema, else its user).
list_tables = QueryCatalog(
    (TABLES_SQL, COLUMNS_SQL, KEYS_SQL), param="owner", default="", build=tables_from_rows
)
