"""Typed Python values rendered as SQL literals, per dialect. Never pastes raw text unescaped.

Supported values: bool, int, float, Decimal, date, datetime (aware → UTC instant, naive → wall
clock), time, str, uuid.UUID. Anything else is a ConfigurationError. One `render` checks and
canonicalises every value (finite numbers, no NUL, UTC instants); each dialect is a `Dialect` table
saying how it writes each kind.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from dataloader_contract.errors import ConfigurationError

Text = Callable[[str], str]


def _check_str(text: str) -> str:
    if "\x00" in text:
        raise ConfigurationError("filter value contains a NUL character")
    return text


def _iso_datetime(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds") + "+00:00"
    return value.isoformat(sep=" ", timespec="microseconds")


def _decimal_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ConfigurationError(f"filter value {value} is not a finite number")
    return format(value, "f")


def _unsupported(value: Any) -> ConfigurationError:
    return ConfigurationError(f"unsupported filter value type {type(value).__name__}")


def _same(text: str) -> str:
    return text


@dataclass(frozen=True)
class Dialect:
    """How one dialect writes each kind of value. Callables get canonical text: `integer` the int,
    `real` its repr, `decimal` plain digits, `aware` a UTC instant `YYYY-MM-DD HH:MM:SS.ffffff+00:00`,
    `naive` the same without offset, `date`/`time` ISO text, `uuid` canonical text, `string` the raw
    (NUL-free) text to quote. A kind set to None is refused."""

    true: str
    false: str
    string: Text
    real: Text
    aware: Callable[[datetime], str]
    naive: Callable[[datetime], str]
    date: Text
    time: Text | None
    uuid: Text
    integer: Callable[[int], str] = str
    decimal: Text = _same


def render(value: Any, dialect: Dialect) -> str:
    """`value` as a literal of `dialect`; ConfigurationError for NaN/±Infinity, NUL, aware times and
    unsupported types."""
    if isinstance(value, bool):
        return dialect.true if value else dialect.false
    if isinstance(value, int):
        return dialect.integer(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return dialect.real(repr(value))
    if isinstance(value, Decimal):
        return dialect.decimal(_decimal_text(value))
    if isinstance(value, datetime):
        return dialect.aware(value.astimezone(UTC)) if value.tzinfo is not None else dialect.naive(value)
    if isinstance(value, date):
        return dialect.date(value.isoformat())
    if isinstance(value, time) and dialect.time is not None:
        if value.tzinfo is not None:
            raise ConfigurationError("time filter values must be naive")
        return dialect.time(value.isoformat(timespec="microseconds"))
    if isinstance(value, uuid.UUID):
        return dialect.uuid(str(value))
    if isinstance(value, str):
        return dialect.string(_check_str(value))
    raise _unsupported(value)


def _cast(template: str) -> Text:
    """A formatter `template.format(text)`, e.g. `"'{}'::date"`."""
    return template.format


def _iso(template: str) -> Callable[[datetime], str]:
    """A datetime formatter putting `_iso_datetime(value)` into `template`."""
    return lambda value: template.format(_iso_datetime(value))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


POSTGRES = Dialect(
    true="TRUE",
    false="FALSE",
    string=lambda text: "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'",
    real=_cast("{}::float8"),
    aware=_iso("'{}'::timestamptz"),
    naive=_iso("'{}'::timestamp"),
    date=_cast("'{}'::date"),
    time=_cast("'{}'::time"),
    uuid=_cast("'{}'::uuid"),
    integer=lambda value: f"{value}::numeric" if abs(value) >= 2**63 else str(value),
    decimal=_cast("{}::numeric"),
)


def postgres_literal(value: Any) -> str:
    """A PostgreSQL literal with an explicit type (E'' strings: quotes and backslashes escaped)."""
    return render(value, POSTGRES)


_MYSQL_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}


def mysql_string(text: str) -> str:
    """A MySQL/MariaDB string literal with backslash escapes (readers clear NO_BACKSLASH_ESCAPES)."""
    return "'" + "".join(_MYSQL_ESCAPES.get(ch, ch) for ch in _check_str(text)) + "'"


MYSQL = Dialect(
    true="TRUE",
    false="FALSE",
    string=mysql_string,
    real=lambda text: text if ("e" in text or "." in text) else f"{text}.0",
    aware=lambda value: f"CAST('{_iso_datetime(value).removesuffix('+00:00')}' AS DATETIME(6))",
    naive=_iso("CAST('{}' AS DATETIME(6))"),
    date=_cast("DATE'{}'"),
    time=_cast("CAST('{}' AS TIME(6))"),
    uuid=_cast("'{}'"),
)


def mysql_literal(value: Any) -> str:
    """A MySQL/MariaDB literal. Aware datetimes are rendered in UTC (sessions run with time_zone '+00:00')."""
    return render(value, MYSQL)


SQLITE = Dialect(
    true="1",
    false="0",
    string=_quoted,
    real=_same,
    # SQLite has no datetime type: datetimes are ISO text `YYYY-MM-DD HH:MM:SS.ffffff` (aware ones in
    # UTC), compared as text with the stored values; decimals compare as their exact text.
    aware=lambda value: _quoted(_iso_datetime(value).removesuffix("+00:00")),
    naive=lambda value: _quoted(_iso_datetime(value)),
    date=_quoted,
    time=_quoted,
    uuid=_quoted,
    decimal=_quoted,
)


def sqlite_literal(value: Any) -> str:
    """A SQLite literal: numbers as numbers, everything else as text (see SQLITE)."""
    return render(value, SQLITE)


_CLICKHOUSE_ESCAPES = {"\\": "\\\\", "'": "\\'"}


def clickhouse_string(text: str) -> str:
    """A ClickHouse string literal (backslash escapes, which ClickHouse always honours)."""
    return "'" + "".join(_CLICKHOUSE_ESCAPES.get(ch, ch) for ch in _check_str(text)) + "'"


def _clickhouse_datetime(value: datetime) -> str:
    text = value.replace(tzinfo=None).isoformat(sep=" ")
    if value.microsecond:
        return f"toDateTime64('{text}', 6, 'UTC')"
    return f"toDateTime('{text}', 'UTC')"


CLICKHOUSE = Dialect(
    true="1",
    false="0",
    string=clickhouse_string,
    real=_same,
    # Instants in UTC; naive values are taken as UTC, the zone the reader reads every DateTime in.
    aware=_clickhouse_datetime,
    naive=_clickhouse_datetime,
    date=_cast("toDate('{}')"),
    time=None,
    uuid=_cast("toUUID('{}')"),
    decimal=lambda text: f"toDecimal128('{text}', {len(text.partition('.')[2])})",
)


def clickhouse_literal(value: Any) -> str:
    """A ClickHouse literal; whole-second datetimes render as DateTime, others as DateTime64(6)."""
    return render(value, CLICKHOUSE)


SNOWFLAKE = Dialect(
    true="TRUE",
    false="FALSE",
    # Snowflake honours backslash escapes in '…', so backslashes are doubled as well as quotes.
    string=lambda text: _quoted(text.replace("\\", "\\\\")),
    real=_cast("{}::FLOAT"),
    aware=_iso("'{}'::TIMESTAMP_TZ"),
    naive=_iso("'{}'::TIMESTAMP_NTZ"),
    date=_cast("'{}'::DATE"),
    time=_cast("'{}'::TIME"),
    uuid=_cast("'{}'"),
)


def snowflake_literal(value: Any) -> str:
    """A Snowflake literal with an explicit type."""
    return render(value, SNOWFLAKE)


MSSQL = Dialect(
    true="1",
    false="0",
    string=lambda text: "N" + _quoted(text),
    real=_cast("CAST({} AS FLOAT)"),
    aware=_iso("CAST('{}' AS DATETIMEOFFSET(7))"),
    naive=_iso("CAST('{}' AS DATETIME2(7))"),
    date=_cast("CAST('{}' AS DATE)"),
    time=_cast("CAST('{}' AS TIME(7))"),
    uuid=_cast("CAST('{}' AS UNIQUEIDENTIFIER)"),
    integer=lambda value: str(value) if abs(value) < 2**63 else f"CAST({value} AS DECIMAL(38, 0))",
)


def mssql_literal(value: Any) -> str:
    """A SQL Server literal with an explicit type (N'' strings, quotes doubled; no backslash escapes)."""
    return render(value, MSSQL)


ORACLE = Dialect(
    true="1",
    false="0",
    string=_quoted,
    real=_cast("TO_BINARY_DOUBLE('{}')"),
    aware=lambda value: f"TIMESTAMP '{_iso_datetime(value).replace('+00:00', ' +00:00')}'",
    naive=_iso("TIMESTAMP '{}'"),
    date=_cast("DATE '{}'"),
    time=None,
    uuid=_cast("'{}'"),
)


def oracle_literal(value: Any) -> str:
    """An Oracle literal (ANSI DATE/TIMESTAMP literals; strings with quotes doubled)."""
    return render(value, ORACLE)
