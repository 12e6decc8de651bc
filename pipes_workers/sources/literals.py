"""Typed Python values rendered as SQL literals, per dialect. Never pastes raw text unescaped.

Supported values: bool, int, float, Decimal, date, datetime (aware → UTC instant, naive → wall
clock), time, str, uuid.UUID. Anything else is a ConfigurationError.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from pipes_workers.errors import ConfigurationError


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


def postgres_literal(value: Any) -> str:
    """A PostgreSQL literal with an explicit type (E'' strings: quotes and backslashes escaped)."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"{value}::numeric" if abs(value) >= 2**63 else str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return f"{value!r}::float8"
    if isinstance(value, Decimal):
        return f"{_decimal_text(value)}::numeric"
    if isinstance(value, datetime):
        kind = "timestamptz" if value.tzinfo is not None else "timestamp"
        return f"'{_iso_datetime(value)}'::{kind}"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::date"
    if isinstance(value, time):
        if value.tzinfo is not None:
            raise ConfigurationError("time filter values must be naive")
        return f"'{value.isoformat(timespec='microseconds')}'::time"
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, str):
        escaped = _check_str(value).replace("\\", "\\\\").replace("'", "''")
        return f"E'{escaped}'"
    raise _unsupported(value)


_MYSQL_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}


def mysql_string(text: str) -> str:
    """A MySQL/MariaDB string literal with backslash escapes (readers clear NO_BACKSLASH_ESCAPES)."""
    return "'" + "".join(_MYSQL_ESCAPES.get(ch, ch) for ch in _check_str(text)) + "'"


def mysql_literal(value: Any) -> str:
    """A MySQL/MariaDB literal. Aware datetimes are rendered in UTC (sessions run with time_zone '+00:00')."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return repr(value) if ("e" in repr(value) or "." in repr(value)) else f"{value!r}.0"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        text = _iso_datetime(value).removesuffix("+00:00")
        return f"CAST('{text}' AS DATETIME(6))"
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, time):
        return f"CAST('{value.isoformat(timespec='microseconds')}' AS TIME(6))"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, str):
        return mysql_string(value)
    raise _unsupported(value)


def sqlite_parameter(value: Any) -> Any:
    """A value bound as a SQLite parameter. SQLite has no datetime type: datetimes become ISO text
    `YYYY-MM-DD HH:MM:SS.ffffff` (aware ones converted to UTC), compared as text with the stored values."""
    if isinstance(value, bool | int | float | str):
        return _check_str(value) if isinstance(value, str) else value
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        return _iso_datetime(value).removesuffix("+00:00")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise _unsupported(value)


_CLICKHOUSE_ESCAPES = {"\\": "\\\\", "'": "\\'"}


def clickhouse_string(text: str) -> str:
    """A ClickHouse string literal (backslash escapes, which ClickHouse always honours)."""
    return "'" + "".join(_CLICKHOUSE_ESCAPES.get(ch, ch) for ch in _check_str(text)) + "'"


def clickhouse_literal(value: Any) -> str:
    """A ClickHouse literal. Datetimes are instants in UTC (naive ones are taken as UTC, the zone the
    reader reads every DateTime in); whole seconds render as DateTime, others as DateTime64(6)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return repr(value)
    if isinstance(value, Decimal):
        text = _decimal_text(value)
        scale = len(text.partition(".")[2])
        return f"toDecimal128('{text}', {scale})"
    if isinstance(value, datetime):
        instant = value.astimezone(UTC) if value.tzinfo is not None else value
        if instant.microsecond:
            return f"toDateTime64('{instant.replace(tzinfo=None).isoformat(sep=' ')}', 6, 'UTC')"
        return f"toDateTime('{instant.replace(tzinfo=None).isoformat(sep=' ')}', 'UTC')"
    if isinstance(value, date):
        return f"toDate('{value.isoformat()}')"
    if isinstance(value, uuid.UUID):
        return f"toUUID('{value}')"
    if isinstance(value, str):
        return clickhouse_string(value)
    raise _unsupported(value)


def snowflake_literal(value: Any) -> str:
    """A Snowflake literal with an explicit type. Single-quoted strings honour backslash escapes in
    Snowflake, so backslashes are doubled as well as quotes."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return f"{value!r}::FLOAT"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        kind = "TIMESTAMP_TZ" if value.tzinfo is not None else "TIMESTAMP_NTZ"
        return f"'{_iso_datetime(value)}'::{kind}"
    if isinstance(value, date):
        return f"'{value.isoformat()}'::DATE"
    if isinstance(value, time):
        return f"'{value.isoformat(timespec='microseconds')}'::TIME"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, str):
        return "'" + _check_str(value).replace("\\", "\\\\").replace("'", "''") + "'"
    raise _unsupported(value)


def mssql_literal(value: Any) -> str:
    """A SQL Server literal with an explicit type (N'' strings, quotes doubled; no backslash escapes)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value) if abs(value) < 2**63 else f"CAST({value} AS DECIMAL(38, 0))"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return f"CAST({value!r} AS FLOAT)"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return f"CAST('{_iso_datetime(value)}' AS DATETIMEOFFSET(7))"
        return f"CAST('{_iso_datetime(value)}' AS DATETIME2(7))"
    if isinstance(value, date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    if isinstance(value, time):
        return f"CAST('{value.isoformat(timespec='microseconds')}' AS TIME(7))"
    if isinstance(value, uuid.UUID):
        return f"CAST('{value}' AS UNIQUEIDENTIFIER)"
    if isinstance(value, str):
        return "N'" + _check_str(value).replace("'", "''") + "'"
    raise _unsupported(value)


def oracle_literal(value: Any) -> str:
    """An Oracle literal (ANSI DATE/TIMESTAMP literals; strings with quotes doubled)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ConfigurationError(f"filter value {value} is not a finite number")
        return f"TO_BINARY_DOUBLE('{value!r}')"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return f"TIMESTAMP '{_iso_datetime(value).replace('+00:00', ' +00:00')}'"
        return f"TIMESTAMP '{_iso_datetime(value)}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, str):
        return "'" + _check_str(value).replace("'", "''") + "'"
    raise _unsupported(value)
