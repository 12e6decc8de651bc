"""Row values of the MySQL/MariaDB binlog (as pymysqlreplication decodes them) turned into the values
the table reader (sources/mysql.py, docs/type_mapping.md) reads for the same rows, then into Arrow.

`binlog_row` works on one decoded row with the event's column metadata; what the reader reads
differently is rewritten here: a SET is the text of its members in definition order ('' when empty),
BIT is an integer, YEAR 0000 is 0 (the library adds 1900), BINARY(n) keeps its zero padding, a
geometry is its WKB plus the `<name>__srid` companion, VARBINARY '' is bytes, and a MySQL JSON
document (decoded to Python) is its JSON text. TIMESTAMP arrives as a naive UTC datetime, as the
reader's sessions (time_zone '+00:00') read it. `arrow_table` then builds each column with the
reader's own conversions (`python_column`, the boolean and time-of-day rules).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import PermanentLoadError, UnsupportedTypeError
from pipes_workers.sources.batches import python_column
from pipes_workers.sources.spatial import srid_column

# pymysqlreplication's FIELD_TYPE numbers (MySQL protocol column types).
_STRING, _VAR_STRING, _VARCHAR, _BLOB, _GEOMETRY, _YEAR = 254, 253, 15, 252, 255, 13
_SET, _BIT, _JSON = 248, 16, 245
_OUT_OF_RANGE = ("out of date range", "out of datetime range", "out of datetime2 range")
_COLS_BITMAP = "cols bitmap"
_EMPTY_SET = "empty set"
_DAY = timedelta(days=1)


def binlog_row(
    values: Mapping[str, Any],
    none_sources: Mapping[str, str],
    columns: Sequence[Any],
    table: str,
    source_types: Mapping[str, str],
) -> tuple[dict[str, Any], frozenset[str]]:
    """One decoded row as the reader's values, and the columns the row image did not carry.

    `columns` are the event's column descriptions (name, type, set values, charset, max length);
    `source_types` the columns' DATA_TYPE (MariaDB's UUID and INET4 travel as BINARY(16)/BINARY(4)).
    A zero date fails naming the column, as the reader's driver cannot read it either.
    """
    row: dict[str, Any] = {}
    missing = set()
    for column in columns:
        name = column.name
        value = values.get(name)
        if value is None:
            source = none_sources.get(name)
            if source == _COLS_BITMAP:
                missing.add(name)
                continue
            if source in _OUT_OF_RANGE:
                raise PermanentLoadError(
                    f"source table {table}: column {name!r} holds a zero or invalid date "
                    "(e.g. 0000-00-00), which the MySQL reader cannot read either; fix the row or cast it in a view"
                )
            if source == _EMPTY_SET and column.type == _SET:
                value = ""
        elif column.type == _SET:
            members = set(value)
            value = ",".join(m for m in (column.set_values or sorted(members)) if m in members)
        elif column.type == _BIT:
            value = int(value, 2) if value else 0
        elif column.type == _YEAR:
            value = 0 if value == 1900 else value  # YEAR 0000 is stored as 0; the library adds 1900
        elif column.type == _GEOMETRY:
            geometry = bytes(value)
            row[srid_column(name)] = int.from_bytes(geometry[:4], "little")
            value = geometry[4:]
        elif column.type == _JSON and not isinstance(value, str):
            value = _json_text(value)
        elif _is_binary(column):
            value = value.encode() if isinstance(value, str) else bytes(value)
            if column.type == _STRING and column.max_length:
                value = value.ljust(column.max_length, b"\x00")  # BINARY(n) reads back zero-padded
            value = typed_text(value, source_types.get(name), name, table)
        row[name] = value
    return row, frozenset(missing)


def typed_text(value: bytes, data_type: str | None, column: str, table: str) -> Any:
    """MariaDB UUID / INET4 bytes as the reader's text; INET6 is refused (its text form is MariaDB's own)."""
    if data_type == "uuid":
        h = value.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    if data_type == "inet4":
        return ".".join(str(b) for b in value)
    if data_type == "inet6":
        raise UnsupportedTypeError(
            f"source table {table}: column {column!r} is INET6, which load_strategy cdc cannot read as the "
            "table reader does; load the table with another strategy or cast it in a view"
        )
    return value


def _is_binary(column: Any) -> bool:
    return column.type in (_STRING, _VAR_STRING, _VARCHAR, _BLOB) and column.character_set_name == "binary"


def _json_text(value: Any) -> str:
    """A MySQL JSON document as MySQL prints it (`{"a": 1, "b": [1, 2]}`)."""

    def plain(v: Any) -> Any:
        if isinstance(v, bytes):
            return v.decode()
        if isinstance(v, dict):
            return {plain(k): plain(x) for k, x in v.items()}
        if isinstance(v, list):
            return [plain(x) for x in v]
        return v

    return json.dumps(plain(value), ensure_ascii=False)


def arrow_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema, table: str) -> pa.Table:
    """Rows of reader values ({column: value}; a missing column is NULL) as a table of `schema`."""
    arrays = [arrow_column([row.get(f.name) for row in rows], f, table) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def arrow_column(values: list[Any], field: pa.Field, table: str) -> pa.Array:
    """One column of Python values (a binlog's or pymysql's) as the reader's Arrow array of `field`."""
    target = field.type
    if pa.types.is_time(target):
        values = [_time_of_day(v, field.name, table) for v in values]
    elif pa.types.is_decimal(target):
        values = [v if v is None or isinstance(v, Decimal | str) else Decimal(v) for v in values]
    elif pa.types.is_boolean(target):
        bad = [v for v in values if v not in (None, 0, 1)]  # True/False compare equal to 1/0
        if bad:
            raise PermanentLoadError(
                f"source table {table}: column {field.name!r} is declared boolean (TINYINT(1)/BIT(1)) "
                "but holds values other than 0 and 1"
            )
    elif pa.types.is_binary(target):
        values = [v.encode() if isinstance(v, str) else v for v in values]
    elif pa.types.is_date(target):
        values = [v.date() if isinstance(v, datetime) else v for v in values]
    return python_column(values, field, table=table)


def _time_of_day(value: Any, column: str, table: str) -> time | str | None:
    """TIME as a time of day; outside 00:00:00–23:59:59.999999 it fails as the reader's read does."""
    if value is None or isinstance(value, time | str):
        return value
    if isinstance(value, timedelta) and timedelta(0) <= value < _DAY:
        return (datetime.min + value).time()
    if isinstance(value, date):
        value = "not a time"
    raise PermanentLoadError(
        f"source table {table}: column {column!r} holds a time outside 00:00:00–23:59:59.999999 "
        f"(or not a time: {value}), which a time-of-day type cannot represent; cast it in a view"
    )
