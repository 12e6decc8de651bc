"""incremental: first load, updates + inserts merged, lookback, NULL incremental values, idempotent re-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows

from pipes_workers.delta_settings import SMALL_READ_ENV
from pipes_workers.load import run_load


# "64": changes are collected in memory (watermark = MAX over the rows read); "0": every read overflows
# that buffer after its first batch and is re-read as a stream (watermark = MAX taken before the read).
@pytest.mark.parametrize("small_read_mb", ["64", "0"])
def test_incremental_merges_changes(
    source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch, small_read_mb: str
) -> None:
    monkeypatch.setenv(SMALL_READ_ENV, small_read_mb)
    table = source.events_table()
    source.insert(table, make_rows(range(1, 6)))
    request = source.request(table, "incremental", lake_root)

    first = run_load(request)
    assert first.rows_read == 5
    assert first.watermark_after is not None
    assert_same_rows(source, table, request)

    request = after_success(request, first)
    later = datetime(2024, 6, 1, 0, 0, 0, 654321, tzinfo=UTC)
    source.execute(
        f"UPDATE {source.quote(table)} SET amount = 99.99, updated_at = %s WHERE id = 2", (source.ts(later),)
    )
    source.insert(table, make_rows(range(6, 8), base=later))
    second = run_load(request)
    assert second.rows_read == 3  # id 2 updated, ids 6 and 7 new
    newest = later + timedelta(seconds=7, microseconds=7)  # id 7's stamp (make_rows)
    assert second.watermark_after is not None
    assert datetime.fromisoformat(second.watermark_after).replace(tzinfo=UTC) == newest
    assert second.delta_version == first.delta_version + 1
    assert_same_rows(source, table, request)

    request = after_success(request, second)
    third = run_load(request)
    assert third.rows_read == 0
    assert third.delta_version == second.delta_version
    assert third.watermark_after == second.watermark_after
    assert_same_rows(source, table, request)


def test_incremental_lookback_rereads_margin(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    rows = make_rows(range(1, 11))
    pg_source.insert(table, rows)
    request = pg_source.request(table, "incremental", lake_root, incremental_lookback="3 seconds")
    request = after_success(request, run_load(request))
    # id 10 is the watermark; a 3 s lookback re-reads ids 8..10 (stamps 1 s apart), all merged idempotently
    again = run_load(request)
    assert again.rows_read == 3
    assert again.watermark_after == request.incremental_value
    assert_same_rows(pg_source, table, request)


def test_incremental_null_values_are_reread(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    source.insert(table, [(4, "no stamp", None, None, None)])
    request = source.request(table, "incremental", lake_root)
    first = run_load(request)
    assert first.null_incremental_rows == 1
    request = after_success(request, first)
    # a NULL-stamped row arriving later is still loaded: NULL rows are re-read by every load
    source.insert(table, [(5, "late no stamp", None, None, None)])
    second = run_load(request)
    assert second.rows_read == 2 and second.null_incremental_rows == 2
    assert_same_rows(source, table, request)


def test_incremental_caps_a_far_future_watermark(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    source.insert(table, [(99, "from the future", None, datetime(2087, 1, 1, tzinfo=UTC), None)])
    request = source.request(table, "incremental", lake_root)
    first = run_load(request)
    stored = datetime.fromisoformat(first.watermark_after)
    if stored.tzinfo is None:
        stored = stored.replace(tzinfo=UTC)
    assert stored <= datetime.now(UTC)
    request = after_success(request, first)
    # a row stamped after the first load is still seen despite the 2087 row
    source.insert(table, [(4, "stamped now", None, datetime.now(UTC), None)])
    second = run_load(request)
    assert second.rows_read == 2  # id 4, and the 2087 row re-read (MERGE keeps it single)
    assert_same_rows(source, table, request)
