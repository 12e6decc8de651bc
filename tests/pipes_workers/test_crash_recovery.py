"""Exactly once under `kill -9`: a worker subprocess is SIGKILLed mid-read, after its Delta commit
(before the control row hears of it) or between backfill chunks; the re-run with the *old* control
row must leave the destination equal to the source, with no duplicates.

The kill comes from the test-only fault-injection point DATALOADER_TEST_CRASH_AFTER
(pipes_workers/strategies/faults.py): read | commit | chunk:N.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from loadtest_support import (
    SourceDB,
    after_success,
    assert_same_rows,
    destination_rows,
    killed_worker,
    make_rows,
)

from dataloader_contract.request import LoadRequest, table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load


def delta_version(request: LoadRequest) -> int | None:
    return (
        DeltaSession(table_uri(request.lake_root, request.destination_table))
        .state(request.control_key)
        .version
    )


@pytest.mark.parametrize("strategy", ["append_only", "incremental"])
def test_kill_after_commit_before_control_update(source: SourceDB, lake_root: Path, strategy: str) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    request = source.request(table, strategy, lake_root)
    request = after_success(request, run_load(request))
    source.insert(table, make_rows(range(4, 7), base=datetime(2025, 1, 1, tzinfo=UTC)))

    killed_worker(
        request, "commit"
    )  # committed to Delta, never reported: the control row keeps the old watermark
    assert delta_version(request) == 1

    messages: list[str] = []
    rerun = run_load(request, log=messages.append)  # same, stale request
    assert any("Delta table is ahead" in m for m in messages)
    assert rerun.rows_read == 0 and rerun.delta_version == 1
    assert rerun.watermark_after != request.incremental_value
    assert_same_rows(source, table, request)


@pytest.mark.parametrize("strategy", ["append_only", "incremental"])
def test_kill_mid_read_commits_nothing(source: SourceDB, lake_root: Path, strategy: str) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    request = source.request(table, strategy, lake_root)
    request = after_success(request, run_load(request))
    source.insert(table, make_rows(range(4, 7), base=datetime(2025, 1, 1, tzinfo=UTC)))

    killed_worker(request, "read")
    assert delta_version(request) == 0

    rerun = run_load(request)
    assert rerun.rows_read == 3
    assert_same_rows(source, table, request)


def test_backfill_resumes_after_kill_between_chunks(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 41)))
    request = pg_source.request(table, "chunked_backfill", lake_root, chunk_column="id", chunk_size=10)

    killed_worker(request, "chunk:2")
    assert len(destination_rows(request)) == 20

    # rows arriving during the backfill: one in an unfinished chunk, one past the planned MAX
    later = datetime(2025, 1, 1, tzinfo=UTC)
    pg_source.execute(
        f"UPDATE {pg_source.quote(table)} SET amount = 1.11, updated_at = %s WHERE id = 35", (later,)
    )
    pg_source.insert(table, make_rows(range(41, 42), base=later))

    messages: list[str] = []
    result = run_load(request, log=messages.append)
    assert any("resuming backfill at chunk 3 of 4" in m for m in messages)
    assert result.chunks_total == 4 and result.next_load_strategy == "incremental"
    assert result.delta_version == 3  # one commit per chunk, none repeated
    ids = [r["id"] for r in destination_rows(request)]
    assert ids == list(range(1, 41))  # the plan (MIN..MAX at start) is kept on resume

    follow = run_load(after_success(request, result))  # the hand-over watermark was taken at the start
    assert follow.rows_read == 2  # id 35 (updated) and id 41 (new)
    assert_same_rows(pg_source, table, request)


def test_backfill_killed_before_the_handover_is_recorded(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 16)))
    request = pg_source.request(table, "chunked_backfill", lake_root, chunk_column="id", chunk_size=10)
    killed_worker(request, "commit")  # every chunk committed, the control row never handed over
    rerun = run_load(request)
    assert rerun.rows_read == 0 and rerun.delta_version == 1
    assert rerun.next_load_strategy == "incremental" and rerun.watermark_after is not None
    assert_same_rows(pg_source, table, request)
