"""MySQL/MariaDB reader: catalog and aggregates via pymysql, rows via connectorx `arrow_stream`.

Every session runs with time_zone '+00:00' (TIMESTAMP values come out as UTC instants) and without
NO_BACKSLASH_ESCAPES (string literals are backslash-escaped). Batches are cast to the declared types.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pymysql

from dataloader_contract.errors import ConfigurationError, LoadError, PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import (
    Aggregate,
    SourceColumn,
)
from pipes_workers.sources.batches import cast_batch, convert_array
from pipes_workers.sources.connectorx_errors import connectorx_mysql_errno
from pipes_workers.sources.failures import classify
from pipes_workers.sources.literals import MYSQL
from pipes_workers.sources.mysql_types import SPATIAL, MySQLType, arrow_type_for, select_expression
from pipes_workers.sources.query import quote_with
from pipes_workers.sources.spatial import with_srid_columns
from pipes_workers.sources.streaming import DriverStream, StreamingReader

SESSION_SETUP = (
    "SET time_zone = '+00:00'",
    "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
    "SET NAMES utf8mb4",
)
STREAM_BATCH_ROWS = 65_536
ER_NO_SUCH_TABLE = 1146

_COLUMNS_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, NUMERIC_PRECISION, NUMERIC_SCALE, IS_NULLABLE
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION
"""
_TABLE_SQL = "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s"


def quote_mysql_identifier(name: str) -> str:
    """`name` in backticks, embedded backticks doubled."""
    return quote_with(name, "`")


class MySQLReader(StreamingReader):
    """Reads MySQL/MariaDB tables as Arrow batches with exactly the catalog-declared types."""

    dialect = "mysql"
    literals = MYSQL
    quote_identifier = staticmethod(quote_mysql_identifier)
    driver_errors = (pymysql.MySQLError,)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        super().__init__(params, queue_depth=queue_depth)
        self._conn = self._catalog_connection()

    def _catalog_connection(self) -> pymysql.connections.Connection:
        p = self.params
        try:
            conn = pymysql.connect(
                host=p.host or "127.0.0.1",
                port=p.port or 3306,
                user=p.user,
                password=p.password or "",
                database=p.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=int(p.options.get("connect_timeout", 10)),
            )
            with conn.cursor() as cur:
                for statement in SESSION_SETUP:
                    cur.execute(statement)
        except pymysql.MySQLError as exc:
            raise self._classify(exc, f"cannot connect to {p.label}") from None
        return conn

    def _url(self) -> str:
        p = self.params
        auth = quote(p.user or "", safe="")
        if p.password:
            auth += ":" + quote(p.password, safe="")
        return f"mysql://{auth}@{p.host or '127.0.0.1'}:{p.port or 3306}/{quote(p.database or '', safe='')}"

    def schema_for(self, schema: str | None) -> str:
        value = schema or self.params.schema or self.params.database
        if not value:
            raise ConfigurationError(f"{self.params.label}: no schema given and no database configured")
        return value

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        try:
            with self._conn.cursor() as cur:
                cur.execute(_TABLE_SQL, (self.schema_for(schema), table))
                if cur.fetchone() is None:
                    raise PermanentLoadError(f"source table {label} does not exist", code="1146")
                cur.execute(_COLUMNS_SQL, (self.schema_for(schema), table))
                rows = cur.fetchall()
        except pymysql.MySQLError as exc:
            raise self._classify(exc, f"reading the catalog of {label}") from None
        result = []
        for name, data_type, column_type, precision, scale, nullable in rows:
            t = MySQLType(_text(data_type).lower(), _text(column_type).lower(), precision, scale)
            result.append(
                SourceColumn(name, t.column_type, arrow_type_for(label, name, t), nullable == "YES")
            )
        result = with_srid_columns(label, result, _is_spatial)
        return self._remember(schema, table, result)

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cur:
                cur.execute(sql, params)
                return [tuple(_text(v) if isinstance(v, bytes) else v for v in row) for row in cur.fetchall()]
        except pymysql.MySQLError as exc:
            raise self._classify(exc, f"reading the catalog of {self.params.label}") from None

    def select_item(self, column: SourceColumn) -> str:
        """Text casts where connectorx's own mapping is not exact; spatial columns as WKB."""
        return select_expression(self.quote_identifier(column.name), column.arrow_type, column.source_type)

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        import connectorx as cx

        source = cx.read_sql(
            self._url(),
            sql,
            return_type="arrow_stream",
            batch_size=min(batch_rows, STREAM_BATCH_ROWS),
            pre_execution_query=list(SESSION_SETUP),
        )
        return DriverStream(source, source.close)

    def _conform(self, batch: pa.RecordBatch, target: pa.Schema, label: str) -> pa.RecordBatch:
        return cast_batch(batch, target, label, _convert)

    def _missing_table(self, exc: BaseException) -> bool:
        return self._errno(exc) == ER_NO_SUCH_TABLE

    def _errno(self, exc: BaseException) -> int | None:
        if isinstance(exc, pymysql.MySQLError):
            args = exc.args
            return args[0] if args and isinstance(args[0], int) else None
        return connectorx_mysql_errno(exc)

    def _classify(self, exc: BaseException, what: str) -> LoadError:
        """As every reader does, with connectorx's errno (which it reports only in its error's text)."""
        return classify(exc, what=what, secrets=self._secrets, mysql_errno=self._errno(exc))

    def _aggregate_row(self, sql: str, label: str) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchone()

    def _typed_aggregates(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row: Any
    ) -> tuple[Any, ...]:
        """MIN/MAX of UTC timestamp columns made aware (the driver returns them naive)."""
        utc_columns = {
            c.name for c in self._known_columns(schema, table) if c.arrow_type == pa.timestamp("us", tz="UTC")
        }
        values = []
        for agg, value in zip(aggregates, row, strict=True):
            if isinstance(value, datetime) and agg.column in utc_columns:
                value = value.replace(tzinfo=UTC)
            values.append(value)
        return tuple(values)

    def close(self) -> None:
        self._close_streams()
        self._conn.close()


def _is_spatial(column: SourceColumn) -> bool:
    return column.source_type.split("(")[0].split(" ")[0] in SPATIAL


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _convert(array: pa.Array, field: pa.Field, label: str) -> pa.Array:
    if pa.types.is_boolean(field.type) and pa.types.is_integer(array.type) and not _only_zero_one(array):
        raise PermanentLoadError(
            f"source table {label}: column {field.name!r} is declared boolean (TINYINT(1)/BIT(1)) "
            "but holds values other than 0 and 1"
        )
    return convert_array(array, field.type, column=field.name, table=label)


def _only_zero_one(array: pa.Array) -> bool:
    if array.null_count == len(array):
        return True
    bounds = pc.min_max(array).as_py()
    return bounds["min"] >= 0 and bounds["max"] <= 1
