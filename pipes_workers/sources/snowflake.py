"""Snowflake reader: snowflake-connector-python, rows as the connector's Arrow result batches.

`fetch_arrow_batches` hands over the result chunks Snowflake already serves as Arrow (bounded memory:
one chunk at a time); each is cast to the declared types in `snowflake_types`. Config keys: account,
user, password, database, schema (default PUBLIC), warehouse, role; host/port only for a private
endpoint or the emulator; options go to `snowflake.connector.connect` (e.g. `protocol`,
`login_timeout`, `network_timeout`, `authenticator`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dataloader_contract.errors import LoadError, PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import (
    SourceColumn,
)
from pipes_workers.sources.drivers import import_driver
from pipes_workers.sources.failures import coded_error
from pipes_workers.sources.literals import SNOWFLAKE
from pipes_workers.sources.query import quote_with
from pipes_workers.sources.snowflake_types import arrow_type_for
from pipes_workers.sources.streaming import DriverStream, StreamingReader

_CONNECT_OPTIONS = frozenset(
    {
        "protocol",
        "login_timeout",
        "network_timeout",
        "authenticator",
        "client_session_keep_alive",
        "ocsp_fail_open",
    }
)
_COLUMNS_SQL = (
    "SELECT column_name, data_type, numeric_precision, numeric_scale, is_nullable "
    "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"
)
_TABLE_SQL = "SELECT 1 FROM information_schema.tables WHERE table_schema = %s AND table_name = %s"
_AUTHENTICATION_WORDS = ("password", "authenticat", "user", "account")


def quote_snowflake_identifier(name: str) -> str:
    """`"name"` with embedded double quotes doubled (case kept exactly)."""
    return quote_with(name, '"')


class SnowflakeReader(StreamingReader):
    """Reads Snowflake tables as Arrow batches with exactly the catalog-declared types."""

    dialect = "snowflake"
    literals = SNOWFLAKE
    default_schema = "PUBLIC"
    quote_identifier = staticmethod(quote_snowflake_identifier)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        self._sf = import_driver("snowflake")
        super().__init__(params, queue_depth=queue_depth)
        self._check_config(required=("account", "database"), options=_CONNECT_OPTIONS)
        self._conn = self._connect()

    def _connect(self) -> Any:
        p = self.params
        kwargs: dict[str, Any] = {
            key: value
            for key, value in {
                "account": p.account, "user": p.user, "password": p.password, "database": p.database,
                "schema": p.schema, "warehouse": p.warehouse, "role": p.role, "host": p.host, "port": p.port,
            }.items()
            if value is not None
        }  # fmt: skip
        kwargs.setdefault("login_timeout", 30)
        kwargs["application"] = "dataloader"
        kwargs.update(p.options)
        try:
            return self._sf.connect(**kwargs)
        except Exception as exc:
            raise self._classify(exc, f"cannot connect to {p.label}") from None

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        try:
            with self._conn.cursor() as cur:
                if not cur.execute(_TABLE_SQL, (self.schema_for(schema), table)).fetchall():
                    raise PermanentLoadError(f"source table {label} does not exist")
                rows = cur.execute(_COLUMNS_SQL, (self.schema_for(schema), table)).fetchall()
        except LoadError:
            raise
        except Exception as exc:
            raise self._classify(exc, f"reading the catalog of {label}") from None
        result = [
            SourceColumn(
                name, data_type, arrow_type_for(label, name, data_type, precision, scale), nullable == "YES"
            )
            for name, data_type, precision, scale, nullable in rows
        ]
        return self._remember(schema, table, result)

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            with self._conn.cursor() as cur:
                return [tuple(row) for row in cur.execute(sql, params).fetchall()]
        except Exception as exc:
            raise self._classify(exc, f"reading the catalog of {self.params.label}") from None

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        cursor = self._conn.cursor()  # Snowflake serves results in chunks; cursors share the session
        try:
            cursor.execute(sql)
        except BaseException:
            cursor.close()
            raise
        chunks = cursor.fetch_arrow_batches()
        return DriverStream(
            (batch for chunk in chunks for batch in chunk.to_batches(max_chunksize=batch_rows)), cursor.close
        )

    def _aggregate_row(self, sql: str, label: str) -> Any:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_all(force_return_table=True)

    _typed_aggregates = StreamingReader._arrow_aggregates

    def _missing_table(self, exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == "42S02"

    def _classify(self, exc: BaseException, what: str) -> LoadError:
        if isinstance(exc, LoadError):
            return exc
        errors = self._sf.errors
        state = getattr(exc, "sqlstate", None) or ""
        text = getattr(exc, "raw_msg", None) or getattr(exc, "msg", None) or str(exc)
        authentication = any(word in str(text).lower() for word in _AUTHENTICATION_WORDS) and state != "08006"
        transient = not authentication and (
            state.startswith(("08", "57", "40"))
            or isinstance(exc, errors.OperationalError | ConnectionError | TimeoutError)
        )
        errno = getattr(exc, "errno", None)
        code = state or (str(errno) if errno not in (None, -1) else None)
        return coded_error(what, str(text), transient=transient, code=code, secrets=self._secrets)

    def close(self) -> None:
        self._close_streams()
        self._conn.close()
