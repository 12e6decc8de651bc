"""SQL Server reader through connectorx (its own TDS client: no ODBC driver), rows as Arrow batches.

NOT tested against a server (none runs on the test machines): SQL generation, quoting, the type map
and the missing-driver error are tested offline. Catalog, aggregates and rows all go through
`connectorx.read_sql`; rows stream with `return_type="arrow_stream"` and are cast to the declared
types (decimals, GUIDs and times read as text, cast exactly). Config keys: host, port (1433), database,
user, password, options (added to the connection URL, e.g. `encrypt=true`, `trusted_connection=true`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import Aggregate, RowFilter, SourceColumn
from pipes_workers.sources.drivers import import_driver
from pipes_workers.sources.literals import MSSQL, mssql_literal
from pipes_workers.sources.mssql_types import arrow_type_for, select_expression
from pipes_workers.sources.query import aggregate_list
from pipes_workers.sources.streaming import DriverStream, StreamingReader

DEFAULT_PORT = 1433
STREAM_BATCH_ROWS = 65_536
_COLUMNS_SQL = (
    "SELECT COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE "
    "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {table} "
    "ORDER BY ORDINAL_POSITION"
)


def quote_mssql_identifier(name: str) -> str:
    """`[name]` with `]` doubled; NUL refused."""
    if "\x00" in name:
        raise ConfigurationError("identifier contains a NUL character")
    return "[" + name.replace("]", "]]") + "]"


class MSSQLReader(StreamingReader):
    """Reads SQL Server tables as Arrow batches (connects on first use)."""

    dialect = "mssql"
    literals = MSSQL
    default_schema = "dbo"
    quote_identifier = staticmethod(quote_mssql_identifier)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        self._cx = import_driver("mssql")
        super().__init__(params, queue_depth=queue_depth)
        self._check_config(required=("host", "database"))

    def url(self) -> str:
        """The connectorx URL (holds the password: never logged)."""
        p = self.params
        auth = quote(p.user or "", safe="")
        if p.password:
            auth += ":" + quote(p.password, safe="")
        query = f"?{urlencode({k: str(v) for k, v in p.options.items()})}" if p.options else ""
        return f"mssql://{auth}@{p.host}:{p.port or DEFAULT_PORT}/{quote(p.database or '', safe='')}{query}"

    def _query(self, sql: str, what: str) -> pa.Table:
        try:
            return self._cx.read_sql(self.url(), sql, return_type="arrow")
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise self._classify(exc, what) from None

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """connectorx takes no parameters: `sql` carries its values as N'' literals already."""
        table = self._query(sql, f"reading the catalog of {self.params.label}")
        return [tuple(row.values()) for row in table.to_pylist()]

    def columns_sql(self, schema: str | None, table: str) -> str:
        """The catalog query (values as N'' literals: connectorx takes no parameters)."""
        return _COLUMNS_SQL.format(schema=mssql_literal(self.schema_for(schema)), table=mssql_literal(table))

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        rows = self._query(self.columns_sql(schema, table), f"reading the catalog of {label}").to_pylist()
        if not rows:
            raise PermanentLoadError(f"source table {label} does not exist")
        return self._remember(schema, table, columns_from_catalog(label, rows))

    def select_item(self, column: SourceColumn) -> str:
        return select_expression(self.quote_identifier(column.name), column.source_type)

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        source = self._cx.read_sql(
            self.url(), sql, return_type="arrow_stream", batch_size=min(batch_rows, STREAM_BATCH_ROWS)
        )
        return DriverStream(source, source.close)

    def _aggregate_sql(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row_filter: RowFilter | None
    ) -> str:
        """MIN/MAX read through the column's SELECT expression (zoned values as their UTC instant)."""
        known = {c.name: c for c in self._known_columns(schema, table)}
        q = self.quote_identifier
        items = [
            f"{agg.fn}({select_expression(q(agg.column), known[agg.column].source_type)})"
            if agg.fn in ("min", "max") and agg.column in known
            else aggregate_list([agg], q)
            for agg in aggregates
        ]
        where = self._where(schema, table, row_filter)
        return f"SELECT {', '.join(items)} FROM {self._table_label(schema, table)}{where}"

    def _aggregate_row(self, sql: str, label: str) -> Any:
        return self._query(sql, f"reading {label}")

    _typed_aggregates = StreamingReader._arrow_aggregates

    def _missing_table(self, exc: BaseException) -> bool:
        return "Invalid object name" in str(exc)  # SQL Server error 208

    def close(self) -> None:
        self._close_streams()


def columns_from_catalog(label: str, rows: Sequence[dict[str, Any]]) -> list[SourceColumn]:
    """SourceColumns from INFORMATION_SCHEMA.COLUMNS rows (COLUMN_NAME, DATA_TYPE, NUMERIC_PRECISION…)."""
    return [
        SourceColumn(
            r["COLUMN_NAME"],
            r["DATA_TYPE"],
            arrow_type_for(
                label, r["COLUMN_NAME"], r["DATA_TYPE"], r["NUMERIC_PRECISION"], r["NUMERIC_SCALE"]
            ),
            r["IS_NULLABLE"] == "YES",
        )
        for r in rows
    ]
