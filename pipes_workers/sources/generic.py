"""Generic SQLAlchemy reader for mssql, oracle, snowflake, clickhouse — UNTESTED against those servers.

Types come from SQLAlchemy reflection; rows are streamed with `stream_results=True` and converted to
Arrow in Python (slow, but bounded memory). The dialect's driver must be installed separately
(pyodbc, oracledb, snowflake-sqlalchemy, clickhouse-sqlalchemy); `options` go into the URL query.
Only the SQLAlchemy layer is exercised by our tests (against PostgreSQL); treat other dialects as
best effort until a test suite runs against them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from pipes_workers.errors import ConfigurationError, LoadError, PermanentLoadError, UnsupportedTypeError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import (
    DEFAULT_BATCH_ROWS,
    Aggregate,
    AggregateFn,
    RowFilter,
    SourceColumn,
    arrow_schema,
)
from pipes_workers.sources.batches import python_column
from pipes_workers.sources.failures import classify
from pipes_workers.sources.streaming import StreamingReader

DRIVERS = {
    "mssql": "mssql+pyodbc",
    "oracle": "oracle+oracledb",
    "snowflake": "snowflake",
    "clickhouse": "clickhouse+native",
}


def arrow_type_for(table: str, column: str, sql_type: sa.types.TypeEngine) -> pa.DataType:
    """Arrow type for a reflected SQLAlchemy type (generic classes only)."""
    t = sql_type
    if isinstance(t, sa.Boolean):
        return pa.bool_()
    if isinstance(t, sa.SmallInteger):
        return pa.int16()
    if isinstance(t, sa.BigInteger):
        return pa.int64()
    if isinstance(t, sa.Integer):
        return pa.int32()
    if isinstance(t, sa.Float):
        return pa.float32() if isinstance(t, sa.REAL) else pa.float64()
    if isinstance(t, sa.Numeric):
        if t.precision is not None and t.precision <= 38 and (t.scale or 0) >= 0:
            return pa.decimal128(t.precision, t.scale or 0)
        raise UnsupportedTypeError(
            f"source table {table}: column {column!r} has type {t} without a precision that fits decimal(38)"
        )
    if isinstance(t, sa.DateTime):
        return pa.timestamp("us", tz="UTC") if t.timezone else pa.timestamp("us")
    if isinstance(t, sa.Date):
        return pa.date32()
    if isinstance(t, sa.Time):
        return pa.time64("us")
    if isinstance(t, sa.String | sa.JSON | sa.Uuid | sa.Enum):
        return pa.string()
    if isinstance(t, sa.LargeBinary | sa.BINARY | sa.VARBINARY):
        return pa.binary()
    raise UnsupportedTypeError(
        f"source table {table}: column {column!r} has type {t} with no faithful Arrow mapping"
    )


class GenericSQLAlchemyReader(StreamingReader):
    """Any SQLAlchemy dialect; see the module docstring (untested against the target servers)."""

    dialect = "sqlalchemy"

    def __init__(
        self, params: ConnectionParams, *, drivername: str | None = None, queue_depth: int = 3
    ) -> None:
        super().__init__(params, queue_depth=queue_depth)
        name = drivername or DRIVERS.get(params.db_type)
        if name is None:
            raise ConfigurationError(
                f"{params.db_config_key}: no SQLAlchemy driver known for {params.db_type!r}"
            )
        url = URL.create(
            name,
            username=params.user,
            password=params.password,
            host=params.host,
            port=params.port,
            database=params.database,
            query={k: str(v) for k, v in params.options.items()},
        )
        try:
            self._engine: Engine = sa.create_engine(url, pool_pre_ping=True)
            with self._engine.connect():
                pass
        except Exception as exc:
            raise classify(exc, what=f"cannot connect to {params.label}", secrets=self._secrets) from None

    def quote_identifier(self, name: str) -> str:
        return self._engine.dialect.identifier_preparer.quote_identifier(name)

    def _schema(self, schema: str | None) -> str | None:
        return schema or self.params.schema

    def _label(self, schema: str | None, table: str) -> str:
        s = self._schema(schema)
        return (
            f"{self.quote_identifier(s)}.{self.quote_identifier(table)}"
            if s
            else self.quote_identifier(table)
        )

    def _table(self, schema: str | None, table: str, names: Sequence[str]) -> sa.TableClause:
        return sa.table(sa.sql.quoted_name(table, True), *(sa.column(sa.sql.quoted_name(n, True)) for n in names),
                        schema=sa.sql.quoted_name(self._schema(schema), True) if self._schema(schema) else None)  # fmt: skip

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._label(schema, table)
        try:
            inspector = sa.inspect(self._engine)
            if not inspector.has_table(table, schema=self._schema(schema)):
                raise PermanentLoadError(f"source table {label} does not exist")
            reflected = inspector.get_columns(table, schema=self._schema(schema))
        except LoadError:
            raise
        except Exception as exc:
            raise classify(exc, what=f"reading the catalog of {label}", secrets=self._secrets) from None
        return [
            SourceColumn(
                c["name"],
                str(c["type"]),
                arrow_type_for(label, c["name"], c["type"]),
                c.get("nullable", True),
            )
            for c in reflected
        ]

    def _where(self, tbl: sa.TableClause, row_filter: RowFilter | None) -> sa.ColumnElement[bool] | None:
        if row_filter is None or not row_filter.conditions:
            return None
        ops = {">": "__gt__", ">=": "__ge__", "<": "__lt__", "<=": "__le__", "=": "__eq__"}
        clauses = [
            getattr(tbl.c[c.column], ops[c.op])(sa.bindparam(None, c.value)) for c in row_filter.conditions
        ]
        clause = sa.and_(*clauses)
        if row_filter.or_null_column:
            clause = sa.or_(clause, tbl.c[row_filter.or_null_column].is_(None))
        return clause

    def read(
        self,
        schema: str | None,
        table: str,
        *,
        columns: Sequence[SourceColumn],
        row_filter: RowFilter | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> pa.RecordBatchReader:
        label = self._label(schema, table)
        names = [c.name for c in columns]
        if row_filter:
            names += [c.column for c in row_filter.conditions if c.column not in names]
            if row_filter.or_null_column and row_filter.or_null_column not in names:
                names.append(row_filter.or_null_column)
        tbl = self._table(schema, table, names)
        stmt = sa.select(*(tbl.c[c.name] for c in columns))
        where = self._where(tbl, row_filter)
        if where is not None:
            stmt = stmt.where(where)
        target = arrow_schema(columns)
        conn: Connection = self._engine.connect().execution_options(stream_results=True)
        try:
            result = conn.execute(stmt)
        except Exception as exc:
            conn.close()
            raise classify(exc, what=f"reading {label}", secrets=self._secrets) from None

        def batches() -> Iterator[pa.RecordBatch]:
            while rows := result.fetchmany(batch_rows):
                arrays = [python_column([r[i] for r in rows], f, table=label) for i, f in enumerate(target)]
                yield pa.RecordBatch.from_arrays(arrays, schema=target)

        def release() -> None:
            result.close()
            conn.close()

        return self._stream(
            target,
            batches,
            read_error=lambda exc: classify(exc, what=f"reading {label}", secrets=self._secrets),
            release=release,
        )

    def aggregate(
        self,
        schema: str | None,
        table: str,
        aggregates: Sequence[Aggregate],
        row_filter: RowFilter | None = None,
    ) -> tuple[Any, ...]:
        names = [a.column for a in aggregates if a.column]
        names += [c.column for c in (row_filter.conditions if row_filter else ())]
        if row_filter and row_filter.or_null_column:
            names.append(row_filter.or_null_column)
        tbl = self._table(schema, table, list(dict.fromkeys(names)))
        fns: dict[AggregateFn, Any] = {"min": sa.func.min, "max": sa.func.max, "count": sa.func.count}
        items = [fns[a.fn](tbl.c[a.column]) if a.column else sa.func.count() for a in aggregates]
        stmt = sa.select(*items).select_from(tbl)
        where = self._where(tbl, row_filter)
        if where is not None:
            stmt = stmt.where(where)
        try:
            with self._engine.connect() as conn:
                row = conn.execute(stmt).one()
        except Exception as exc:
            raise classify(exc, what=f"reading {self._label(schema, table)}", secrets=self._secrets) from None
        return tuple(row)

    def close(self) -> None:
        self._close_streams()
        self._engine.dispose()
