"""SQLite reader: declared-type mapping, filters bound as parameters, quoting, errors."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from dataloader_contract.errors import ConfigurationError, PermanentLoadError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import Aggregate, Condition, RowFilter, SourceReader, arrow_schema, open_reader


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            'CREATE TABLE "we""ird; table" (id INTEGER PRIMARY KEY, "Mixed Case ""col""" TEXT, amount DECIMAL(12,2),'
            " ts DATETIME, d DATE, t TIME, flag BOOLEAN, ratio REAL, raw BLOB, anything)"
        )
        conn.executemany(
            'INSERT INTO "we""ird; table" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
            [
                (
                    1,
                    "héllo 😀",
                    "12.34",
                    "2024-01-01 00:00:00.000001",
                    "2024-02-29",
                    "23:59:59.5",
                    1,
                    0.5,
                    b"\x00",
                    7,
                ),
                (2, "O'Brien", 5, "2024-01-01 00:00:00.000002", "2024-03-01", "00:00:00", 0, 2, b"", "x"),
                (3, None, None, None, None, None, None, None, None, None),
            ],
        )
    return path


@pytest.fixture
def reader(sqlite_path: Path) -> SourceReader:
    with open_reader(SourceConfig("lite", "sqlite", "literal", {"path": str(sqlite_path)})) as r:
        yield r


TABLE, COLUMN = 'we"ird; table', 'Mixed Case "col"'


def test_types_round_trip(reader: SourceReader) -> None:
    columns = reader.columns(None, TABLE)
    assert [c.arrow_type for c in columns] == [
        pa.int64(), pa.string(), pa.decimal128(12, 2), pa.timestamp("us"), pa.date32(), pa.time64("us"),
        pa.bool_(), pa.float64(), pa.binary(), pa.string(),
    ]  # fmt: skip
    batches = list(reader.read(None, TABLE, columns=columns, batch_rows=2))
    assert len(batches) == 2 and all(b.schema == arrow_schema(columns) for b in batches)
    rows = pa.Table.from_batches(batches).to_pylist()
    assert rows[0] == {
        "id": 1, COLUMN: "héllo 😀", "amount": Decimal("12.34"), "ts": datetime(2024, 1, 1, 0, 0, 0, 1),
        "d": date(2024, 2, 29), "t": time(23, 59, 59, 500000), "flag": True, "ratio": 0.5, "raw": b"\x00",
        "anything": "7",
    }  # fmt: skip
    assert rows[1]["amount"] == Decimal("5.00") and rows[1]["flag"] is False
    assert all(v is None for k, v in rows[2].items() if k != "id")


def test_filters_and_aggregates(reader: SourceReader) -> None:
    columns = reader.columns(None, TABLE)
    t1 = datetime(2024, 1, 1, 0, 0, 0, 1)

    def ids(row_filter: RowFilter) -> list[int]:
        return (
            reader.read(None, TABLE, columns=columns, row_filter=row_filter)
            .read_all()
            .column("id")
            .to_pylist()
        )

    assert ids(RowFilter((Condition("ts", ">", t1),))) == [2]
    assert ids(RowFilter((Condition("ts", ">", t1),), or_null_column="ts")) == [2, 3]
    assert ids(RowFilter((Condition(COLUMN, "=", "O'Brien"),))) == [2]
    assert reader.aggregate(
        None, TABLE, [Aggregate("min", "ts"), Aggregate("max", "amount"), Aggregate("count")]
    ) == (
        t1,
        Decimal("12.34"),
        3,
    )


def test_missing_table_and_file(reader: SourceReader, tmp_path: Path) -> None:
    with pytest.raises(PermanentLoadError, match=r'^source table "main"."nope" does not exist$'):
        reader.columns(None, "nope")
    with pytest.raises(PermanentLoadError, match="does not exist"):
        open_reader(SourceConfig("lite", "sqlite", "literal", {"path": str(tmp_path / "missing.db")}))
    with pytest.raises(ConfigurationError, match="'path'"):
        open_reader(SourceConfig("lite", "sqlite", "literal", {}))


def test_value_not_matching_the_declared_type_fails_naming_the_column(sqlite_path: Path) -> None:
    with sqlite3.connect(sqlite_path) as conn:
        conn.execute("CREATE TABLE loose (id INTEGER, n INTEGER)")
        conn.execute("INSERT INTO loose VALUES (1, 'not a number')")
    with (
        open_reader(SourceConfig("lite", "sqlite", "literal", {"path": str(sqlite_path)})) as r,
        pytest.raises(PermanentLoadError, match="column 'n'"),
    ):
        r.read(None, "loose", columns=r.columns(None, "loose")).read_all()
