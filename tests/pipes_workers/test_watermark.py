"""Watermark text round trips at full precision, lookback parsing, capping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from dataloader_contract.errors import ConfigurationError
from pipes_workers.watermark import (
    cap_watermark,
    format_watermark,
    parse_lookback,
    parse_watermark,
    subtract_lookback,
    watermark_cap,
)

TZ = pa.timestamp("us", tz="UTC")
NAIVE = pa.timestamp("us")


def test_timestamps_keep_microseconds_and_offset() -> None:
    value = datetime(2024, 5, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
    text = format_watermark(value)
    assert text == "2024-05-01T10:00:00.000001+00:00"
    assert parse_watermark(text, TZ) == value
    assert format_watermark(datetime(2024, 5, 1, 12, 0)) == "2024-05-01T12:00:00.000000"
    assert parse_watermark("2024-05-01 12:00:00.5", NAIVE) == datetime(2024, 5, 1, 12, 0, 0, 500000)
    assert parse_watermark("2024-05-01T12:00:00", TZ).tzinfo is not None


def test_other_types_round_trip() -> None:
    assert parse_watermark(format_watermark(42), pa.int64()) == 42
    assert parse_watermark(format_watermark(Decimal("12.30")), pa.decimal128(10, 2)) == Decimal("12.30")
    assert parse_watermark(format_watermark(date(2024, 2, 29)), pa.date32()) == date(2024, 2, 29)
    assert parse_watermark(None, pa.int64()) is None
    with pytest.raises(ConfigurationError, match="'id'"):
        parse_watermark("yesterday", pa.int64(), column="id")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 hours", timedelta(hours=2)),
        ("1 day 02:00:00", timedelta(days=1, hours=2)),
        ("00:05:00", timedelta(minutes=5)),
        ("90", timedelta(seconds=90)),
        ("3 mins 30 secs", timedelta(minutes=3, seconds=30)),
    ],
)
def test_interval_lookbacks(text: str, expected: timedelta) -> None:
    assert parse_lookback(text, TZ) == expected


def test_lookback_on_dates_and_numbers() -> None:
    assert parse_lookback("2", pa.date32()) == timedelta(days=2)
    assert subtract_lookback(date(2024, 1, 10), timedelta(hours=1)) == date(2024, 1, 9)
    assert subtract_lookback(100, parse_lookback("10", pa.int64())) == 90
    assert parse_lookback(None, TZ) is None
    with pytest.raises(ConfigurationError, match="unit"):
        parse_lookback("3 fortnights", TZ)


def test_capping() -> None:
    start = datetime(2026, 1, 1, 12, tzinfo=UTC)
    cap = watermark_cap(start, TZ)
    assert cap_watermark(datetime(2087, 1, 1, tzinfo=UTC), cap) == (cap, True)
    assert cap_watermark(start - timedelta(hours=1), cap) == (start - timedelta(hours=1), False)
    assert watermark_cap(start, NAIVE).tzinfo is None
    assert watermark_cap(start, pa.int64()) is None
