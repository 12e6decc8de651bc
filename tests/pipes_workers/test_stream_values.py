"""python_value: the tracked MAX converted like pyarrow's `as_py`, without pyarrow importing pandas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from pipes_workers.strategies.stream import python_value

STAMP = datetime(2024, 2, 29, 23, 59, 58, 123456)


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
@pytest.mark.parametrize("tz", [None, "UTC", "+05:30", "-03:00", "Europe/Paris"])
def test_timestamps_convert_like_as_py(unit: str, tz: str | None) -> None:
    value = STAMP.replace(tzinfo=UTC) if tz else STAMP
    scalar = pa.scalar(value, pa.timestamp("us", tz=tz)).cast(pa.timestamp(unit, tz=tz), safe=False)
    ours = python_value(scalar)
    assert ours == scalar.as_py() and ours.utcoffset() == scalar.as_py().utcoffset()


def test_other_values_and_nulls_pass_through() -> None:
    assert python_value(pa.scalar(Decimal("1.50"), pa.decimal128(12, 2))) == Decimal("1.50")
    assert python_value(pa.scalar(None, pa.timestamp("us", tz="UTC"))) is None
    assert python_value(pa.scalar(7, pa.int64())) == 7
    offset = python_value(pa.scalar(STAMP.replace(tzinfo=UTC), pa.timestamp("us", tz="+05:30")))
    assert offset.utcoffset() == timedelta(hours=5, minutes=30) and offset.tzinfo == timezone(
        timedelta(hours=5, minutes=30)
    )
