"""PostgreSQL reader: catalog via psycopg, rows via ADBC (COPY binary decoded in C) in a producer thread.

ADBC is used through its low-level API (database, connection, statement), not its DB-API module:
`adbc_driver_manager.dbapi` imports `pyarrow.dataset`, which imports pandas — 0.16 s of a load's
start-up for nothing a load uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import psycopg
import pyarrow as pa
from adbc_driver_manager._reader import AdbcRecordBatchReader

from dataloader_contract.errors import PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources import postgres_connect
from pipes_workers.sources.base import (
    Aggregate,
    PendingCount,
    RowFilter,
    SourceColumn,
)
from pipes_workers.sources.literals import POSTGRES
from pipes_workers.sources.postgres_batches import conform_batch
from pipes_workers.sources.postgres_sessions import AdbcSession, BackgroundCount
from pipes_workers.sources.postgres_types import SPATIAL, CatalogType, arrow_type_for, select_expression
from pipes_workers.sources.query import quote_with
from pipes_workers.sources.spatial import with_srid_columns
from pipes_workers.sources.streaming import DriverStream, StreamingReader

BATCH_SIZE_OPTION = "adbc.postgresql.batch_size_hint_bytes"
SESSION_SETUP = (
    "SET TIME ZONE 'UTC'",
    "SET IntervalStyle = 'iso_8601'",
    "SET standard_conforming_strings = on",
)
DEFAULT_OPTIONS = {"connect_timeout": "10", "application_name": "dataloader-worker"}

_RELATION_SQL = """
SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""
# A column's type facts (CatalogType's fields, domains resolved), for a pg_attribute `a` joined
# with TYPE_JOINS; discovery's catalog query selects them too.
TYPE_ITEMS = """format_type(a.atttypid, a.atttypmod) AS declared,
       format_type(b.oid, base.typmod) AS effective,
       b.typname, b.typtype, e.typname AS element_typname"""
TYPE_JOINS = """JOIN pg_type t ON t.oid = a.atttypid
CROSS JOIN LATERAL (
    SELECT CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END AS oid,
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS typmod
) base
JOIN pg_type b ON b.oid = base.oid
LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'"""
_COLUMNS_SQL = f"""
SELECT a.attname, {TYPE_ITEMS}, NOT a.attnotnull AS nullable
FROM pg_attribute a
{TYPE_JOINS}
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def batch_size_hint_bytes(columns: Sequence[SourceColumn], batch_rows: int) -> int:
    """The driver sizes batches in bytes: estimate `batch_rows` rows' worth (clamped to 1–64 MB)."""
    width = sum(_fixed_width(c.arrow_type) or 32 for c in columns)
    return max(1 << 20, min(64 << 20, width * batch_rows))


def _fixed_width(arrow_type: pa.DataType) -> int | None:
    try:
        return max(1, arrow_type.byte_width)
    except ValueError:  # variable width
        return None


def quote_pg_identifier(name: str) -> str:
    """`"name"` with embedded double quotes doubled."""
    return quote_with(name, '"')


class PostgresReader(StreamingReader):
    """Reads PostgreSQL tables as Arrow batches with exactly the catalog-declared types."""

    dialect = "postgresql"
    literals = POSTGRES
    default_schema = "public"
    quote_identifier = staticmethod(quote_pg_identifier)
    driver_errors = (psycopg.Error,)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        super().__init__(params, queue_depth=queue_depth)
        self._conn = self._catalog_connection()
        self._counts: list[BackgroundCount] = []

    # -- connections -------------------------------------------------------------------------
    def _libpq_options(self) -> dict[str, str]:
        options = {**DEFAULT_OPTIONS, **{k: str(v) for k, v in self.params.options.items()}}
        return options

    def _catalog_connection(self) -> psycopg.Connection:
        p = self.params
        kwargs: dict[str, Any] = {k: v for k, v in {
            "host": p.host, "port": p.port, "dbname": p.database, "user": p.user, "password": p.password,
        }.items() if v is not None}  # fmt: skip
        try:
            conn = postgres_connect.connect(autocommit=True, **kwargs, **self._libpq_options())
            for statement in SESSION_SETUP:
                conn.execute(statement)
        except psycopg.Error as exc:
            raise self._classify(exc, f"cannot connect to {p.label}") from None
        return conn

    def _uri(self) -> str:
        p = self.params
        auth = ""
        if p.user is not None:
            auth = quote(p.user, safe="")
            if p.password is not None:
                auth += ":" + quote(p.password, safe="")
            auth += "@"
        host = quote(p.host or "", safe="")
        port = f":{p.port}" if p.port else ""
        query = urlencode(self._libpq_options())
        return f"postgresql://{auth}{host}{port}/{quote(p.database or '', safe='')}?{query}"

    def read_session_setup(self) -> tuple[str, ...]:
        """The statements each read's ADBC session runs first (a subclass may add to them)."""
        return SESSION_SETUP

    def _adbc_session(self) -> AdbcSession:
        """A new ADBC connection (autocommit, ADBC's default) with the session set up."""
        try:
            session = AdbcSession.open(self._uri())
        except Exception as exc:
            raise self._classify(exc, f"cannot connect to {self.params.label}") from None
        try:
            for statement in self.read_session_setup():
                session.statement.set_sql_query(statement)
                session.statement.execute_update()
        except Exception as exc:
            session.close()
            raise self._classify(exc, f"cannot set up a session on {self.params.label}") from None
        return session

    # -- interface ---------------------------------------------------------------------------
    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        try:
            row = self._conn.execute(_RELATION_SQL, (self.schema_for(schema), table)).fetchone()
            if row is None:
                raise PermanentLoadError(f"source table {label} does not exist", code="42P01")
            rows = self._conn.execute(_COLUMNS_SQL, (row[0],)).fetchall()
        except psycopg.Error as exc:
            raise self._classify(exc, f"reading the catalog of {label}") from None
        result = []
        for name, declared, effective, typname, typtype, element, nullable in rows:
            catalog = CatalogType(declared, effective, typname, typtype, element)
            result.append(SourceColumn(name, declared, arrow_type_for(label, name, catalog), bool(nullable)))
        return self._remember(schema, table, with_srid_columns(label, result, _is_spatial))

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            raise self._classify(exc, f"reading the catalog of {self.params.label}") from None

    def select_item(self, column: SourceColumn) -> str:
        """Typed casts per column (text for numerics and text-fallback types, WKB for spatial ones)."""
        return select_expression(self.quote_identifier(column.name), column.arrow_type, column.source_type)

    def select_sql(
        self,
        schema: str | None,
        table: str,
        columns: Sequence[SourceColumn],
        row_filter: RowFilter | None,
        *,
        extra: Sequence[str] = (),
    ) -> str:
        """The SELECT that `read` runs, with an array_ndims guard per list column last."""
        q = self.quote_identifier
        guards = [f"coalesce(array_ndims({q(c.name)}), 1)" for c in columns if pa.types.is_list(c.arrow_type)]
        return super().select_sql(schema, table, columns, row_filter, extra=[*guards, *extra])

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        session = self._adbc_session()
        try:
            statement = session.statement
            statement.set_options(**{BATCH_SIZE_OPTION: str(batch_size_hint_bytes(columns, batch_rows))})
            statement.set_sql_query(sql)
            handle, _rows = statement.execute_query()
            # ADBC's own reader: an error mid-stream keeps its SQLSTATE (pyarrow's keeps only text).
            return DriverStream(AdbcRecordBatchReader._import_from_c(handle.address), session.close)
        except BaseException:
            session.close()
            raise

    def _conform(self, batch: pa.RecordBatch, target: pa.Schema, label: str) -> pa.RecordBatch:
        lists = [f.name for f in target if pa.types.is_list(f.type)]
        return conform_batch(batch, target, lists, label)

    def _missing_table(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == "42P01"

    def _aggregate_row(self, sql: str, label: str) -> Any:
        return self._conn.execute(sql).fetchone()

    def count_before_read(self, schema: str | None, table: str) -> PendingCount:
        """COUNT(*) in a REPEATABLE READ snapshot taken now, before the read's, on a connection of
        its own and in a thread: the server counts while the worker reads and merges (a COUNT of
        10M rows is most of a 1% incremental load's time when run first)."""
        label = self._table_label(schema, table)
        sql = self._aggregate_sql(schema, table, [Aggregate("count")], None)
        conn = self._catalog_connection()
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            conn.execute("SELECT 1")  # takes the transaction's snapshot
        except psycopg.Error as exc:
            conn.close()
            raise self._read_error(exc, label) from None
        count = BackgroundCount(conn, sql)
        self._counts.append(count)

        def wait() -> int:
            try:
                return count.value()
            except psycopg.Error as exc:
                raise self._read_error(exc, label) from None

        return PendingCount(wait)

    def close(self) -> None:
        for count in self._counts:
            count.abandon()
        self._close_streams()
        self._conn.close()


def _is_spatial(column: SourceColumn) -> bool:
    return column.source_type.split("(")[0] in SPATIAL
