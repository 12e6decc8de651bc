"""Watermarks: typed values for a column, their text form, lookback arithmetic and cursor capping.

A watermark is stored as text (control row `incremental_value`, Delta commit metadata). Text forms:
integers and decimals as plain numbers, dates as `YYYY-MM-DD`, timestamps as ISO 8601 with
microseconds (`2024-05-01T10:00:00.123456+00:00` for time-zone-aware columns, no offset for naive
ones). Parsing gives the typed Python value a reader renders into SQL, so no precision is lost.
"""

from __future__ import annotations

import math
import os
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError

DEFAULT_CAP_MARGIN = timedelta(0)
CAP_MARGIN_ENV = "DATALOADER_WATERMARK_CAP_MARGIN_S"

_UNIT_SECONDS = {
    "microsecond": 1e-6,
    "us": 1e-6,
    "millisecond": 1e-3,
    "ms": 1e-3,
    "second": 1,
    "sec": 1,
    "s": 1,
    "minute": 60,
    "min": 60,
    "m": 60,
    "hour": 3600,
    "hr": 3600,
    "h": 3600,
    "day": 86400,
    "d": 86400,
    "week": 7 * 86400,
    "w": 7 * 86400,
}
_PART = re.compile(r"([+-]?\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"([+-])?(\d+):(\d{2})(?::(\d{2}(?:\.\d+)?))?$")


def is_temporal(arrow_type: pa.DataType) -> bool:
    """True for date and timestamp columns (the ones capped and stepped in days)."""
    return pa.types.is_timestamp(arrow_type) or pa.types.is_date(arrow_type)


def parse_watermark(text: str | None, arrow_type: pa.DataType, *, column: str = "?") -> Any:
    """Turn stored watermark text into the typed value for a column of `arrow_type`.

    Args:
        text: the stored text, or None (no watermark yet).
        arrow_type: the Arrow type of the incremental column.
        column: the column name, for error messages.

    Returns:
        int, Decimal, date, datetime (aware for tz columns, naive otherwise), or str; None for None.
    """
    if text is None or text == "":
        return None
    try:
        if pa.types.is_integer(arrow_type):
            return int(text)
        if pa.types.is_decimal(arrow_type) or pa.types.is_floating(arrow_type):
            return Decimal(text) if pa.types.is_decimal(arrow_type) else float(text)
        if pa.types.is_timestamp(arrow_type):
            value = datetime.fromisoformat(text.replace(" ", "T", 1))
            if arrow_type.tz is not None:
                return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
            return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
        if pa.types.is_date(arrow_type):
            return date.fromisoformat(text[:10])
    except (ValueError, InvalidOperation) as exc:
        raise ConfigurationError(
            f"watermark {text!r} is not a valid value for column {column!r} of type {arrow_type}: {exc}"
        ) from None
    return text


def format_watermark(value: Any) -> str | None:
    """The stored text form of a typed watermark value (microseconds, explicit offset when aware)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def parse_lookback(
    text: str | None, arrow_type: pa.DataType, *, column: str = "?"
) -> timedelta | Decimal | None:
    """Parse `incremental_lookback` for a column.

    For date/timestamp columns it is an interval: PostgreSQL interval text (`1 day 02:00:00`,
    `3 hours`, `00:05:00`) or a bare number of seconds (timestamps) / days (dates). For numeric
    columns it is a number subtracted from the watermark.
    """
    if text is None or str(text).strip() == "":
        return None
    raw = str(text).strip().lower()
    if not is_temporal(arrow_type):
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise ConfigurationError(
                f"incremental_lookback {text!r} is not a number, as column {column!r} ({arrow_type}) needs"
            ) from None
    try:
        number = Decimal(raw)
    except InvalidOperation:
        return _parse_interval(raw, text)
    unit = 86400 if pa.types.is_date(arrow_type) else 1
    return timedelta(seconds=float(number) * unit)


def _parse_interval(raw: str, original: str) -> timedelta:
    total = 0.0
    rest = raw
    clock = _CLOCK.search(rest)
    if clock:
        sign = -1 if clock.group(1) == "-" else 1
        seconds = int(clock.group(2)) * 3600 + int(clock.group(3)) * 60 + float(clock.group(4) or 0)
        total += sign * seconds
        rest = rest[: clock.start()]
    matched = 0
    for amount, unit in _PART.findall(rest):
        key = unit[:-1] if unit.endswith("s") and unit[:-1] in _UNIT_SECONDS else unit
        if key not in _UNIT_SECONDS:
            raise ConfigurationError(f"incremental_lookback {original!r}: unknown unit {unit!r}")
        total += float(amount) * _UNIT_SECONDS[key]
        matched += 1
    if not matched and not clock:
        raise ConfigurationError(f"incremental_lookback {original!r} is not an interval (e.g. '2 hours')")
    return timedelta(seconds=total)


def subtract_lookback(value: Any, lookback: timedelta | Decimal | None) -> Any:
    """The watermark moved back by the lookback (unchanged when either is None)."""
    if value is None or lookback is None:
        return value
    if isinstance(lookback, timedelta):
        if isinstance(value, datetime):
            return value - lookback
        return value - timedelta(days=math.ceil(lookback.total_seconds() / 86400))
    if isinstance(value, int) and lookback == lookback.to_integral_value():
        return value - int(lookback)
    if isinstance(value, float):
        return value - float(lookback)
    return Decimal(value) - lookback


def cap_margin() -> timedelta:
    """The capping margin: DATALOADER_WATERMARK_CAP_MARGIN_S seconds, 0 by default.

    A cap below the true MAX is always safe here (incremental re-reads, append_only defers the rows
    beyond it), while a cap above "now" makes rows inserted within the margin after the load
    invisible; hence no margin unless a source clock runs ahead and a lookback covers the margin.
    """
    raw = os.environ.get(CAP_MARGIN_ENV)
    return timedelta(seconds=float(raw)) if raw else DEFAULT_CAP_MARGIN


def watermark_cap(load_start: datetime, arrow_type: pa.DataType) -> Any:
    """The highest watermark a load starting at `load_start` (aware) may set, or None (not capped).

    Naive timestamp columns are compared as UTC (the worker cannot know the source's local zone);
    date columns are capped at the load's UTC date.
    """
    limit = load_start.astimezone(UTC) + cap_margin()
    if pa.types.is_timestamp(arrow_type):
        return limit if arrow_type.tz is not None else limit.replace(tzinfo=None)
    if pa.types.is_date(arrow_type):
        return limit.date()
    return None


def cap_watermark(value: Any, cap: Any) -> tuple[Any, bool]:
    """`min(value, cap)` and whether the cap applied."""
    if value is None or cap is None or value <= cap:
        return value, False
    return cap, True


def greater(a: Any, b: Any) -> Any:
    """The larger of two optional values (None is smallest)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b
