"""ClickHouse reader: the native protocol through clickhouse-driver, rows as Arrow record batches.

`query_arrow_stream` turns each server block into one record batch (bounded memory: blocks of
`max_block_size` rows); batches are cast to the declared types in `clickhouse_types`. Strings arrive
as bytes and are checked as UTF-8 in Arrow, so a String holding other bytes is refused naming the
column. Every DateTime is read in UTC. Works with servers from 18.x (Debian 12's clickhouse-server)
on; config keys: host, port (9000), database, user (`default`), password, options (passed to the
driver: `secure`, `connect_timeout`, `send_receive_timeout`, `compression`…).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, LoadError, PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import (
    Aggregate,
    Condition,
    RowFilter,
    SourceColumn,
)
from pipes_workers.sources.batches import cast_batch, convert_array
from pipes_workers.sources.clickhouse_types import arrow_type_for, is_datetime, parse_type, select_expression
from pipes_workers.sources.drivers import import_driver
from pipes_workers.sources.failures import coded_error
from pipes_workers.sources.literals import CLICKHOUSE
from pipes_workers.sources.query import quote_with
from pipes_workers.sources.streaming import DriverStream, StreamingReader

DEFAULT_PORT = 9000
# Server error codes a retry may cure: timeouts, too many queries/parts, network, memory pressure.
TRANSIENT_CODES = frozenset({159, 160, 164, 202, 203, 209, 210, 241, 242, 252, 253, 319, 394, 425, 999})
TABLE_MISSING_CODES = frozenset({60, 81})
_DRIVER_OPTIONS = frozenset(
    {"secure", "verify", "ca_certs", "connect_timeout", "send_receive_timeout", "compression", "client_name"}
)


def quote_clickhouse_identifier(name: str) -> str:
    """`name` in backticks; backslashes and backticks backslash-escaped (ClickHouse's own rule)."""
    quote_with(name, "`")  # refuses NUL
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class ClickHouseReader(StreamingReader):
    """Reads ClickHouse tables as Arrow batches with exactly the catalog-declared types."""

    dialect = "clickhouse"
    literals = CLICKHOUSE
    quote_identifier = staticmethod(quote_clickhouse_identifier)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        self._driver = import_driver("clickhouse")
        super().__init__(params, queue_depth=queue_depth)
        self._check_config(options=_DRIVER_OPTIONS)
        self._client = self._connect()

    def _connect(self) -> Any:
        p = self.params
        options = dict(p.options)
        options.setdefault("connect_timeout", 10)
        options.setdefault("client_name", "dataloader-worker")
        client = self._driver.Client(
            host=p.host or "127.0.0.1",
            port=p.port or DEFAULT_PORT,
            database=p.database or "default",
            user=p.user or "default",
            password=p.password or "",
            settings={"strings_as_bytes": True},
            **options,
        )
        try:
            client.execute("SELECT 1")
        except Exception as exc:
            client.disconnect()
            raise self._classify(exc, f"cannot connect to {p.label}") from None
        return client

    def schema_for(self, schema: str | None) -> str:
        return schema or self.params.schema or self.params.database or "default"

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        database = self.schema_for(schema)
        try:
            found = self._client.execute(
                "SELECT 1 FROM system.tables WHERE database = %(db)s AND name = %(t)s",
                {"db": database, "t": table},
            )
            if not found:
                raise PermanentLoadError(f"source table {label} does not exist")
            rows = self._client.execute(f"DESCRIBE TABLE {label}")
        except LoadError:
            raise
        except Exception as exc:
            raise self._classify(exc, f"reading the catalog of {label}") from None
        result = []
        for row in rows:
            name, spec = _text(row[0]), _text(row[1])
            arrow_type = arrow_type_for(label, name, spec)
            result.append(SourceColumn(name, spec, arrow_type, parse_type(spec).nullable))
        return self._remember(schema, table, result)

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            rows = self._client.execute(sql, params or {})
        except Exception as exc:
            raise self._classify(exc, f"reading the catalog of {self.params.label}") from None
        return [tuple(_text(v) if isinstance(v, bytes) else v for v in row) for row in rows]

    def _filter(self, schema: str | None, table: str, row_filter: RowFilter | None) -> RowFilter | None:
        """Bounds on DateTime columns moved to whole seconds (see `_whole_seconds`)."""
        seconds = {c.name for c in self._known_columns(schema, table) if is_datetime(c.source_type)}
        return _whole_seconds(row_filter, seconds)

    def select_item(self, column: SourceColumn) -> str:
        """DateTime columns converted to UTC."""
        return select_expression(self.quote_identifier(column.name), column.source_type)

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        client = self._connect()  # one connection per stream: aggregates may run while it is open
        try:
            source = client.query_arrow_stream(
                sql, settings={"max_block_size": batch_rows, "strings_as_bytes": True}, field_metadata=False
            )
        except BaseException:
            client.disconnect()
            raise
        return DriverStream(source, client.disconnect)

    def _conform(self, batch: pa.RecordBatch, target: pa.Schema, label: str) -> pa.RecordBatch:
        return cast_batch(batch, target, label, _convert)

    def _aggregate_sql(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row_filter: RowFilter | None
    ) -> str:
        """MIN/MAX each beside the COUNT of the column's values: ClickHouse's MIN/MAX of no rows is the
        type's default (0, 1970-01-01), not NULL."""
        label = self._table_label(schema, table)
        if not aggregates:
            raise ConfigurationError("aggregate() needs at least one aggregate")
        known = {c.name: c for c in self._known_columns(schema, table)}
        items: list[str] = []
        for agg in aggregates:
            if agg.fn == "count":
                items.append(f"count({self.quote_identifier(agg.column)})" if agg.column else "count()")
                continue
            if agg.fn not in ("min", "max") or not agg.column:
                raise ConfigurationError(f"unsupported aggregate {agg.fn}({agg.column or ''})")
            if agg.column not in known:
                raise PermanentLoadError(f"source table {label} has no column {agg.column!r}")
            column = known[agg.column]
            expr = select_expression(self.quote_identifier(column.name), column.source_type)
            # min/max of no rows is the type's default (0, 1970-01-01) in ClickHouse, not NULL.
            items += [f"{agg.fn}({expr})", f"count({self.quote_identifier(column.name)})"]
        return f"SELECT {', '.join(items)} FROM {label}{self._where(schema, table, row_filter)}"

    def _aggregate_row(self, sql: str, label: str) -> Any:
        return self._client.query_arrow(sql, settings={"strings_as_bytes": True}, field_metadata=False)

    def _typed_aggregates(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row: Any
    ) -> tuple[Any, ...]:
        """MIN/MAX converted to the column's type; None when the column had no value (its COUNT is 0)."""
        label = self._table_label(schema, table)
        known = {c.name: c for c in self._known_columns(schema, table)}
        values, i = [], 0
        for agg in aggregates:
            if agg.fn == "count":
                values.append(row.column(i)[0].as_py())
                i += 1
                continue
            field = pa.field(agg.column, known[agg.column].arrow_type)
            seen = row.column(i + 1)[0].as_py()
            value = _convert(row.column(i).combine_chunks(), field, label)[0].as_py()
            values.append(value if seen else None)
            i += 2
        return tuple(values)

    def _missing_table(self, exc: BaseException) -> bool:
        return getattr(exc, "code", None) in TABLE_MISSING_CODES

    def _classify(self, exc: BaseException, what: str) -> LoadError:
        if isinstance(exc, LoadError):
            return exc
        errors = self._driver.errors
        code = getattr(exc, "code", None)
        transient = code in TRANSIENT_CODES or isinstance(
            exc, errors.NetworkError | errors.SocketTimeoutError | ConnectionError | TimeoutError | EOFError
        )
        return coded_error(
            what,
            _server_message(exc),
            transient=transient,
            code=str(code) if code is not None else None,
            secrets=self._secrets,
        )

    def close(self) -> None:
        self._close_streams()
        self._client.disconnect()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _server_message(exc: BaseException) -> str:
    """The server's own sentence: `DB::Exception: …` without the `Code: N.` line and the stack trace."""
    text = getattr(exc, "message", None) or str(exc)
    text = text.split("Stack trace:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Code:")]
    return " ".join(lines).removeprefix("DB::Exception: ").strip() or type(exc).__name__


def _whole_seconds(row_filter: RowFilter | None, columns: set[str]) -> RowFilter | None:
    """DateTime columns hold whole seconds: a bound with microseconds is moved to the whole second that
    selects exactly the same rows (`> 12.3` ≡ `> 12`, `>= 12.3` ≡ `>= 13`), so no row is skipped or re-read."""
    if row_filter is None or not columns:
        return row_filter
    conditions = []
    for cond in row_filter.conditions:
        value = cond.value
        if cond.column in columns and isinstance(value, datetime) and value.microsecond:
            floor = value.replace(microsecond=0)
            value = floor if cond.op in (">", "<=") else floor + timedelta(seconds=1)
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
        conditions.append(Condition(cond.column, cond.op, value))
    return dataclasses.replace(row_filter, conditions=tuple(conditions))


def _convert(array: pa.Array, field: pa.Field, label: str) -> pa.Array:
    try:
        return convert_array(array, field.type, column=field.name, table=label)
    except PermanentLoadError:
        if _holds_bytes(array.type) and _holds_text(field.type):
            raise PermanentLoadError(
                f"source table {label}: column {field.name!r} holds bytes that are not UTF-8 text; "
                "select it through a view as hex() or cast the column to FixedString to load it as binary"
            ) from None
        raise


def _holds_bytes(t: pa.DataType) -> bool:
    return pa.types.is_binary(t) or (pa.types.is_list(t) and _holds_bytes(t.value_type))


def _holds_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or (pa.types.is_list(t) and _holds_text(t.value_type))
