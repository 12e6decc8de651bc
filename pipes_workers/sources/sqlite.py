"""SQLite reader (stdlib sqlite3, read-only): rows fetched in batches and converted to Arrow."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, PermanentLoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import (
    Aggregate,
    SourceColumn,
    arrow_schema,
)
from pipes_workers.sources.batches import python_column
from pipes_workers.sources.literals import SQLITE
from pipes_workers.sources.query import quote_with
from pipes_workers.sources.sqlite_types import arrow_type_for, select_expression
from pipes_workers.sources.streaming import DriverStream, StreamingReader


def quote_sqlite_identifier(name: str) -> str:
    """`"name"` with embedded double quotes doubled."""
    return quote_with(name, '"')


class SQLiteReader(StreamingReader):
    """Reads a SQLite database file (config key `path`), opened read-only."""

    dialect = "sqlite"
    literals = SQLITE
    default_schema = "main"
    quote_identifier = staticmethod(quote_sqlite_identifier)
    driver_errors = (sqlite3.Error,)

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        if not params.path:
            raise ConfigurationError(
                f"{params.db_config_key}: sqlite source needs db_config_value key 'path'"
            )
        super().__init__(params, queue_depth=queue_depth)
        self._path = Path(params.path).resolve()
        if not self._path.is_file():
            raise PermanentLoadError(f"{params.label}: database file does not exist")
        self._conn = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(
                f"file:{quote(str(self._path))}?mode=ro", uri=True, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._classify(exc, f"cannot open {self.params.label}") from None

    def columns(self, schema: str | None, table: str) -> list[SourceColumn]:
        label = self._table_label(schema, table)
        master = f"{self.quote_identifier(self.schema_for(schema))}.sqlite_master"
        try:
            found = self._conn.execute(
                f"SELECT 1 FROM {master} WHERE type IN ('table', 'view') AND name = ?", (table,)
            ).fetchone()
            if found is None:
                raise PermanentLoadError(f"source table {label} does not exist")
            rows = self._conn.execute(
                'SELECT name, type, "notnull", pk FROM pragma_table_info(?, ?) ORDER BY cid',
                (table, self.schema_for(schema)),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._classify(exc, f"reading the catalog of {label}") from None
        return self._remember(
            schema,
            table,
            [
                SourceColumn(name, declared or "", arrow_type_for(label, name, declared or ""), not notnull)
                for name, declared, notnull, _pk in rows
            ],
        )

    def catalog_rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, params or ()).fetchall()
        except sqlite3.Error as exc:
            raise self._classify(exc, f"reading the catalog of {self.params.label}") from None

    def select_item(self, column: SourceColumn) -> str:
        return select_expression(self.quote_identifier(column.name), column.arrow_type)

    def _execute(
        self, sql: str, columns: Sequence[SourceColumn], batch_rows: int, label: str
    ) -> DriverStream:
        conn = self._connect()
        try:
            cursor = conn.execute(sql)
        except BaseException:
            conn.close()
            raise
        target = arrow_schema(columns)

        def batches() -> Iterator[pa.RecordBatch]:
            while rows := cursor.fetchmany(batch_rows):
                arrays = [
                    python_column([row[i] for row in rows], field, table=label)
                    for i, field in enumerate(target)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=target)

        return DriverStream(batches(), conn.close)

    def _conform(self, batch: pa.RecordBatch, target: pa.Schema, label: str) -> pa.RecordBatch:
        return batch  # built from Python values with exactly the target types in _execute

    def _missing_table(self, exc: BaseException) -> bool:
        return "no such table" in str(exc)

    def _aggregate_row(self, sql: str, label: str) -> Any:
        return self._conn.execute(sql).fetchone()

    def _typed_aggregates(
        self, schema: str | None, table: str, aggregates: Sequence[Aggregate], row: Any
    ) -> tuple[Any, ...]:
        """MIN/MAX parsed into the column's type (SQLite returns its stored text or number)."""
        label = self._table_label(schema, table)
        types = {c.name: c for c in self._known_columns(schema, table)}
        values = []
        for agg, value in zip(aggregates, row, strict=True):
            if agg.fn in ("min", "max") and value is not None and agg.column in types:
                column = types[agg.column]
                field = pa.field(column.name, column.arrow_type)
                text = value if not pa.types.is_decimal(column.arrow_type) else str(value)
                value = python_column([text], field, table=label)[0].as_py()
            values.append(value)
        return tuple(values)

    def close(self) -> None:
        self._close_streams()
        self._conn.close()
