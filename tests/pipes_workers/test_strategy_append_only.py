"""append_only: appends past the watermark, never a lookback, NULLs on the first load only, capping."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from loadtest_support import SourceDB, after_success, assert_same_rows, destination_rows, make_rows

from pipes_workers.load import run_load


def test_append_only_appends_new_rows(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    source.insert(table, [(4, "no stamp", None, None, None)])
    request = source.request(table, "append_only", lake_root, incremental_lookback="1 day")
    first = run_load(request)
    assert first.rows_read == 4 and first.null_incremental_rows == 1
    assert_same_rows(source, table, request)

    request = after_success(request, first)
    later = datetime(2024, 3, 1, tzinfo=UTC)
    source.insert(table, make_rows(range(5, 8), base=later))
    second = run_load(request)
    assert second.rows_read == 3  # the lookback is ignored: nothing re-read, nothing duplicated
    assert_same_rows(source, table, request)

    request = after_success(request, second)
    third = run_load(request)
    assert third.rows_read == 0 and third.delta_version == second.delta_version
    assert third.watermark_after == second.watermark_after


def test_append_only_defers_future_rows(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 3)))
    source.insert(table, [(99, "from the future", None, datetime(2087, 1, 1, tzinfo=UTC), None)])
    request = source.request(table, "append_only", lake_root)
    first = run_load(request)
    assert first.rows_read == 2  # the 2087 row waits for its time, and is never appended twice
    request = after_success(request, first)
    source.insert(table, [(3, "stamped now", None, datetime.now(UTC), None)])
    second = run_load(request)
    assert second.rows_read == 1
    assert [r["id"] for r in destination_rows(request)] == [1, 2, 3]


def test_load_full_then_append_has_no_duplicates(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = pg_source.request(table, "append_only", lake_root)
    request = after_success(request, run_load(request))
    forced = run_load(dataclasses.replace(request, load_full=True))
    assert forced.load_full_done and forced.rows_read == 3
    request = after_success(request, forced)
    pg_source.insert(table, make_rows(range(4, 6), base=datetime(2025, 1, 1, tzinfo=UTC)))
    assert run_load(request).rows_read == 2
    assert_same_rows(pg_source, table, request)
