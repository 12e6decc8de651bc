"""check_and_load: skipped (nothing written, watermark untouched) when no row is past the watermark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows

from pipes_workers.load import run_load


def test_check_and_load_skips_then_loads(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    request = source.request(table, "check_and_load", lake_root)
    first = run_load(request)
    assert first.rows_read == 3 and not first.skipped
    request = after_success(request, first)

    idle = run_load(request)
    assert idle.skipped and idle.rows_read == 0
    assert idle.delta_version == first.delta_version
    assert idle.watermark_after == idle.watermark_before == first.watermark_after

    later = datetime(2024, 9, 1, tzinfo=UTC)
    source.execute(
        f"UPDATE {source.quote(table)} SET amount = 5.55, updated_at = %s WHERE id = 1", (source.ts(later),)
    )
    source.insert(table, make_rows(range(4, 5), base=later))
    busy = run_load(request)
    assert not busy.skipped and busy.rows_read == 2
    assert busy.delta_version == first.delta_version + 1
    assert_same_rows(source, table, request)
