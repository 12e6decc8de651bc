"""Oracle reader through python-oracledb's thin mode (no Instant Client), rows as Arrow batches.

NOT tested against a server (none runs on the test machines): SQL generation, quoting, the type map
and the missing-driver error are tested offline. `Connection.fetch_df_batches` yields Arrow-backed
data frames of `batch_rows` rows, cast to the declared types. Config keys: host, port (1521),
database (the service name), user, password, schema (the owner; default the user); no options.

Types: NUMBER(p,s) → decimal128(p,s) (NUMBER(p≤18) → int64); NUMBER without precision is refused (it
can hold 38 digits at any scale: cast it in a view); BINARY_FLOAT/BINARY_DOUBLE/FLOAT → float32/64;
VARCHAR2/NVARCHAR2/CHAR/NCHAR/CLOB/NCLOB → string; DATE and TIMESTAMP(p≤6) → timestamp('us');
TIMESTAMP WITH (LOCAL) TIME ZONE → timestamp('us','UTC') (read with SYS_EXTRACT_UTC); RAW/BLOB → binary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import LoadError, PermanentLoadError, UnsupportedTypeError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import SourceColumn
from pipes_workers.sources.drivers import import_driver
from pipes_workers.sources.literals import ORACLE
from pipes_workers.sources.query import quote_with
from pipes_workers.sources.streaming import DriverStream, StreamingReader

DEFAULT_PORT = 1521
_COLUMNS_SQL = (
    "SELECT column_name, data_type, data_precision, data_scale, nullable FROM all_tab_columns "
    "WHERE owner = :owner AND table_name = :name ORDER BY column_id"
)
_STRINGS = frozenset({"VARCHAR2", "NVARCHAR2", "CHAR", "NCHAR", "CLOB", "NCLOB", "LONG"})
_TIMESTAMP = re.compile(r"TIMESTAMP(?:\((\d)\))?( WITH (?:LOCAL )?TIME ZONE)?$")


def quote_oracle_identifier(name: str) -> str:
    """`"name"` with embedded double quotes doubled (case kept)."""
    return quote_with(name, '"')


def arrow_type_for(
    table: str, column: str, data_type: str, precision: int | None, scale: int | None
) -> pa.DataType:
    """The Arrow type for an ALL_TAB_COLUMNS row, or UnsupportedTypeError naming table, column and type."""
    name = data_type.upper()
    if name == "NUMBER" and precision is not None:
        s = scale or 0
        return pa.int64() if s == 0 and precision <= 18 else pa.decimal128(precision, s)
    if name in ("BINARY_FLOAT",):
        return pa.float32()
    if name in ("BINARY_DOUBLE", "FLOAT"):
        return pa.float64()
    if name in _STRINGS:
        return pa.string()
    if name == "DATE":
        return pa.timestamp("us")
    if name in ("RAW", "BLOB", "LONG RAW"):
        return pa.binary()
    if m := _TIMESTAMP.match(name):
        if m[1] is not None and int(m[1]) > 6:
            reason = "fractional seconds finer than the microseconds Delta stores"
        else:
            return pa.timestamp("us", tz="UTC") if m[2] else pa.timestamp("us")
    elif name == "NUMBER":
        reason = "NUMBER without a precision may exceed decimal(38) at any scale"
    else:
        reason = "no faithful Arrow mapping"
    raise UnsupportedTypeError(
        f"source table {table}: column {column!r} has type {data_type!r}: {reason}; "
        "select it through a view with an explicit cast"
    )


def select_expression(quoted: str, data_type: str) -> str:
    """The SELECT item: zoned timestamps as their UTC instant."""
    return f"SYS_EXTRACT_UTC({quoted})" if "TIME ZONE" in data_type.upper() else quoted


class OracleReader(StreamingReader):
    """Reads Oracle tables as Arrow batches (connects on first use)."""

    dialect = "oracle"
    literals = ORACLE
    quote_identifier = staticmethod(quote_oracle_identifier)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        self._db = import_driver("oracle")
        super().__init__(params, queue_depth=queue_depth)
        self._check_config(required=("host", "database"), options=frozenset())  # database: the service name
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            p = self.params
            # NUMBER as Decimal (decimal128 in data frames), not float: the worker process reads no
            # other Oracle data, so the driver-wide default is ours to set.
            self._db.defaults.fetch_decimals = True
            try:
                self._conn = self._db.connect(
                    user=p.user, password=p.password, dsn=f"{p.host}:{p.port or DEFAULT_PORT}/{p.database}"
                )
            except Exception as exc:
                raise self._classify(exc, f"cannot connect to {p.label}") from None
        return self._conn

    def schema_for(self, schema: str | None) -> str:
        return schema or self.params.schema or (self.params.user or "").upper()

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            with self._connection().cursor() as cur:
                return [tuple(row) for row in cur.execute(sql, params or {}).fetchall()]
        except LoadError:
            raise
        except Exception as exc:
            raise self._classify(exc, f"reading the catalog of {self.params.label}") from None

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        try:
            with self._connection().cursor() as cur:
                rows = cur.execute(_COLUMNS_SQL, owner=self.schema_for(schema), name=table).fetchall()
        except LoadError:
            raise
        except Exception as exc:
            raise self._classify(exc, f"reading the catalog of {label}") from None
        if not rows:
            raise PermanentLoadError(f"source table {label} does not exist")
        return self._remember(schema, table, columns_from_catalog(label, rows))

    def select_item(self, column: SourceColumn) -> str:
        return select_expression(self.quote_identifier(column.name), column.source_type)

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        frames = self._connection().fetch_df_batches(statement=sql, size=batch_rows)
        return DriverStream(
            (batch for frame in frames for batch in pa.table(frame).to_batches()), lambda: None
        )

    def _aggregate_row(self, sql: str, label: str) -> Any:
        with self._connection().cursor() as cur:
            return cur.execute(sql).fetchone()

    def _missing_table(self, exc: BaseException) -> bool:
        return "ORA-00942" in str(exc)

    def close(self) -> None:
        self._close_streams()
        if self._conn is not None:
            self._conn.close()


def columns_from_catalog(label: str, rows: Sequence[tuple[Any, ...]]) -> list[SourceColumn]:
    """SourceColumns from ALL_TAB_COLUMNS rows (name, data_type, precision, scale, nullable)."""
    return [
        SourceColumn(
            name, data_type, arrow_type_for(label, name, data_type, precision, scale), nullable == "Y"
        )
        for name, data_type, precision, scale, nullable in rows
    ]
