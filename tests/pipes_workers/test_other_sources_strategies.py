"""The six strategies against ClickHouse and Snowflake (the fakesnow emulator): a first load, then two
rounds of changes, each compared with the source row by row. Stamps are whole seconds (ClickHouse's
DateTime); the PostgreSQL/MariaDB strategy tests cover microsecond precision."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from loadtest_support import ODD, SourceDB, after_success, assert_same_rows, destination_rows
from other_sources_support import ClickHouseSource, SnowflakeSource

from pipes_workers.load import run_load

BASE = datetime(2024, 3, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture(params=["clickhouse", "snowflake"])
def source(request: pytest.FixtureRequest) -> Iterator[SourceDB]:
    """A ClickHouse or Snowflake source (skips when its server is unreachable; fails under CI=true)."""
    if request.param == "clickhouse":
        db: SourceDB = ClickHouseSource(request.getfixturevalue("clickhouse_url"))
    else:
        db = SnowflakeSource(request.getfixturevalue("snowflake_url"))
    try:
        yield db
    finally:
        db.conn.close()


def rows(ids: range, base: datetime = BASE, amount: str = "1.50") -> list[tuple[Any, ...]]:
    """(id, name, amount, updated_at, event_date) with distinct whole-second stamps."""
    return [
        (i, f"name {i}", Decimal(amount) + i, base + timedelta(seconds=i), (base + timedelta(days=i)).date())
        for i in ids
    ]


def stamp(text: str | None) -> datetime:
    assert text is not None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_full(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, rows(range(1, 6)))
    request = source.request(table, "full", lake_root, incremental_column=None)
    assert run_load(request).rows_read == 5
    assert_same_rows(source, table, request)

    q, c = source.quote(table), source.quote
    source.execute(f"DELETE FROM {q} WHERE {c('id')} = 3")
    source.execute(f"UPDATE {q} SET {c('amount')} = %s WHERE {c('id')} = 1", (Decimal("7.25"),))
    source.insert(table, rows(range(6, 7)))
    assert run_load(request).rows_read == 5
    assert_same_rows(source, table, request)

    source.execute(
        f"UPDATE {q} SET {c('amount')} = %s, {c('event_date')} = NULL WHERE {c('id')} = 2", (Decimal("0.01"),)
    )
    source.insert(table, [(7, None, None, None if source.null_timestamps else BASE, None)])
    assert run_load(request).rows_read == 6
    assert_same_rows(source, table, request)


def test_incremental(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, rows(range(1, 6)))
    request = source.request(table, "incremental", lake_root)
    first = run_load(request)
    assert first.rows_read == 5 and stamp(first.watermark_after) == BASE + timedelta(seconds=5)
    assert_same_rows(source, table, request)

    q, c = source.quote(table), source.quote
    later = BASE + timedelta(days=30)
    request = after_success(request, first)
    source.execute(
        f"UPDATE {q} SET {c('amount')} = %s, {c('updated_at')} = %s WHERE {c('id')} = 2",
        (Decimal("99.99"), later),
    )
    source.insert(table, rows(range(6, 8), base=later))
    second = run_load(request)
    assert second.rows_read == 3
    assert stamp(second.watermark_after) == later + timedelta(seconds=7)
    assert_same_rows(source, table, request)

    request = after_success(request, second)
    latest = later + timedelta(days=1)
    source.execute(
        f"UPDATE {q} SET {c(ODD)} = 'renamed', {c('updated_at')} = %s WHERE {c('id')} = 1",
        (latest,),
    )
    nulls = source.null_timestamps
    if nulls:
        source.insert(table, [(8, "no stamp", None, None, None)])
    third = run_load(request)
    assert third.rows_read == 1 + nulls and third.null_incremental_rows == nulls
    assert_same_rows(source, table, request)

    idle = run_load(after_success(request, third))
    assert idle.rows_read == nulls  # a NULL-stamped row is re-read, merged onto itself
    assert_same_rows(source, table, request)


def test_append_only(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, rows(range(1, 4)))
    request = source.request(table, "append_only", lake_root, primary_keys=())
    first = run_load(request)
    assert first.rows_read == 3
    assert_same_rows(source, table, request)

    request = after_success(request, first)
    source.insert(table, rows(range(4, 6), base=BASE + timedelta(hours=1)))
    second = run_load(request)
    assert second.rows_read == 2
    assert_same_rows(source, table, request)

    request = after_success(request, second)
    source.insert(table, rows(range(6, 7), base=BASE + timedelta(hours=2)))
    third = run_load(request)
    assert third.rows_read == 1
    assert_same_rows(source, table, request)
    assert run_load(after_success(request, third)).rows_read == 0


def test_rolling(source: SourceDB, lake_root: Path) -> None:
    days = 7
    now = datetime.now(UTC).replace(microsecond=0)
    table = source.events_table()
    source.insert(table, rows(range(1, 3), base=now - timedelta(days=40)))
    source.insert(table, rows(range(3, 8), base=now - timedelta(days=2)))
    request = source.request(
        table,
        "rolling",
        lake_root,
        rolling_column="updated_at",
        rolling_window_days=days,
        incremental_column=None,
    )
    cutoff = datetime.combine(now.date() - timedelta(days=days), datetime.min.time(), UTC)

    def window() -> list[dict[str, Any]]:
        return [r for r in source.rows(table) if r["updated_at"] is not None and r["updated_at"] >= cutoff]

    assert run_load(request).rows_read == 5
    assert destination_rows(request) == window()

    q, c = source.quote(table), source.quote
    source.execute(f"DELETE FROM {q} WHERE {c('id')} = 4")
    source.execute(f"UPDATE {q} SET {c('amount')} = %s WHERE {c('id')} = 5", (Decimal("3.33"),))
    source.execute(f"UPDATE {q} SET {c('updated_at')} = %s WHERE {c('id')} = 6", (now - timedelta(days=30),))
    source.insert(table, rows(range(8, 9), base=now - timedelta(days=1)))
    assert run_load(request).rows_read == 4
    assert destination_rows(request) == window()
    assert [r["id"] for r in destination_rows(request)] == [3, 5, 7, 8]

    source.execute(f"UPDATE {q} SET {c('amount')} = %s WHERE {c('id')} = 3", (Decimal("4.44"),))
    source.insert(table, rows(range(9, 10), base=now - timedelta(hours=5)))
    assert run_load(request).rows_read == 5
    assert destination_rows(request) == window()


def test_check_and_load(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, rows(range(1, 4)))
    request = source.request(table, "check_and_load", lake_root)
    first = run_load(request)
    assert first.rows_read == 3 and not first.skipped
    request = after_success(request, first)
    idle = run_load(request)
    assert idle.skipped and idle.delta_version == first.delta_version

    q, c = source.quote(table), source.quote
    later = BASE + timedelta(days=10)
    source.execute(
        f"UPDATE {q} SET {c('amount')} = %s, {c('updated_at')} = %s WHERE {c('id')} = 1",
        (Decimal("5.55"), later),
    )
    source.insert(table, rows(range(4, 5), base=later))
    second = run_load(request)
    assert not second.skipped and second.rows_read == 2
    assert_same_rows(source, table, request)

    request = after_success(request, second)
    source.insert(table, rows(range(5, 7), base=later + timedelta(days=1)))
    third = run_load(request)
    assert not third.skipped and third.rows_read == 2
    assert_same_rows(source, table, request)


def test_chunked_backfill_then_incremental(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, rows(range(1, 24)))
    request = source.request(table, "chunked_backfill", lake_root, chunk_column="id", chunk_size=10)
    result = run_load(request)
    assert result.chunks_total == 3 and result.rows_read == 23
    assert result.next_load_strategy == "incremental"
    assert stamp(result.watermark_after) == BASE + timedelta(seconds=23)
    assert_same_rows(source, table, request)

    request = after_success(request, result)
    q, c = source.quote(table), source.quote
    later = BASE + timedelta(days=60)
    source.execute(
        f"UPDATE {q} SET {c('amount')} = %s, {c('updated_at')} = %s WHERE {c('id')} = 11",
        (Decimal("1.01"), later),
    )
    source.insert(table, rows(range(24, 26), base=later))
    second = run_load(request)
    assert second.rows_read == 3
    assert_same_rows(source, table, request)

    request = after_success(request, second)
    source.execute(
        f"DELETE FROM {q} WHERE {c('id')} = 25"
    )  # re-inserted with a newer stamp: merged over the old one
    source.insert(table, rows(range(25, 26), base=later + timedelta(days=1)))
    third = run_load(request)
    assert third.rows_read == 1
    assert_same_rows(source, table, request)


def test_new_source_column_is_added_to_delta(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, rows(range(1, 3)))
    request = source.request(table, "full", lake_root, incremental_column=None)
    run_load(request)
    extra = {"clickhouse": "Nullable(Int32)", "snowflake": "NUMBER(9, 0)"}[source.db_type]
    source.execute(f"ALTER TABLE {source.quote(table)} ADD COLUMN {source.quote('added later')} {extra}")
    source.insert(table, rows(range(3, 4)))
    assert run_load(request).rows_read == 3
    assert_same_rows(source, table, request)
    assert all("added later" in row and row["added later"] is None for row in destination_rows(request))
