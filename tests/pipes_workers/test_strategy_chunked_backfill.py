"""chunked_backfill: chunks cover MIN..MAX inclusive, one commit each, then hand over to incremental."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows

from dataloader_contract.request import table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load


def test_backfill_by_integer_chunks(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 26)))
    source.insert(table, [(100, "no stamp", None, None, None)])  # MAX id is its own chunk
    request = source.request(table, "chunked_backfill", lake_root, chunk_column="id", chunk_size=10)
    messages: list[str] = []
    result = run_load(request, log=messages.append)
    assert result.chunks_total == 10 and result.chunks_done == 10
    assert result.rows_read == 26
    assert result.next_load_strategy == "incremental"
    expected = max(r["updated_at"] for r in source.rows(table) if r["updated_at"] is not None)
    stamp = datetime.fromisoformat(result.watermark_after)
    assert stamp.replace(tzinfo=stamp.tzinfo or UTC) == expected.replace(tzinfo=expected.tzinfo or UTC)
    assert any("chunk 3 of 10" in m for m in messages)
    assert_same_rows(source, table, request)
    # empty chunks write nothing: versions = non-empty chunks (1-10, 11-20, 21-25, 91-100)
    assert result.delta_version == 3

    request = after_success(request, result)
    assert request.load_strategy == "incremental"
    source.insert(table, make_rows(range(26, 28), base=datetime(2025, 1, 1, tzinfo=UTC)))
    follow = run_load(request)
    assert follow.rows_read == 3  # the two new rows and the NULL-stamped one (re-read by incremental)
    assert_same_rows(source, table, request)


def test_backfill_by_date_chunks_is_inclusive(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(0, 15)))  # event_date 2024-01-01 .. 2024-01-15
    request = pg_source.request(table, "chunked_backfill", lake_root, chunk_column="event_date", chunk_size=7)
    result = run_load(request)
    assert result.chunks_total == 3  # [01-01, 01-08), [01-08, 01-15), [01-15, 01-15]
    assert result.rows_read == 15
    assert_same_rows(pg_source, table, request)
    rows = DeltaSession(table_uri(lake_root, request.destination_table)).read_arrow()
    assert max(rows.column("event_date").to_pylist()) == date(2024, 1, 15)
