"""Source deletes reach Delta: `hard` removes the rows, `soft` stamps `_dataloader_deleted_at`.

For incremental, append_only, check_and_load and chunked_backfill tables, on PostgreSQL and MariaDB:
after the next reconciliation the Delta table equals the source row by row (soft: its live rows do).
Safety: a source that returns no keys, or a pass deleting more than DATALOADER_DELETE_MAX_SHARE,
deletes nothing and says why; a kill -9 mid-reconcile loses nothing and half-deletes nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from loadtest_support import (
    SourceDB,
    after_success,
    assert_same_rows,
    destination_rows,
    killed_worker,
    make_rows,
    normalise,
)

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest, table_uri
from pipes_workers.deletes import MAX_SHARE_ENV, SLICE_ROWS_ENV, deletes_due
from pipes_workers.lake.schema_conform import DELETED_AT
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load

LATER = datetime(2025, 1, 1, tzinfo=UTC)
STRATEGIES: dict[str, dict[str, Any]] = {
    "incremental": {},
    "append_only": {},
    "check_and_load": {},
    "chunked_backfill": {"chunk_column": "id", "chunk_size": 4},
}


def _delete(source: SourceDB, table: str, ids: tuple[int, ...]) -> None:
    marks = ", ".join(str(i) for i in ids)
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id IN ({marks})")


def _live_and_deleted(request: LoadRequest) -> tuple[list[dict[str, Any]], list[int]]:
    rows = destination_rows(request)
    live = [{k: v for k, v in r.items() if k != DELETED_AT} for r in rows if r[DELETED_AT] is None]
    return live, [r["id"] for r in rows if r[DELETED_AT] is not None]


def _loaded(source: SourceDB, lake_root: Path, strategy: str, mode: str, ids: range = range(1, 11)):
    table = source.events_table()
    source.insert(table, make_rows(ids))
    request = source.request(table, strategy, lake_root, delete_mode=mode, **STRATEGIES[strategy])
    return table, after_success(request, run_load(request))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_hard_deletes_reach_delta(source: SourceDB, lake_root: Path, strategy: str) -> None:
    table, request = _loaded(source, lake_root, strategy, "hard")
    _delete(source, table, (3, 7))
    source.insert(table, make_rows(range(11, 12), base=LATER))

    result = run_load(request)
    assert result.rows_deleted == 2 and result.deletes_note is None
    assert_same_rows(source, table, request)

    again = run_load(after_success(request, result))  # nothing left to delete
    assert again.rows_deleted == 0
    assert_same_rows(source, table, request)


def test_hard_deletes_read_the_source_in_key_ranges(
    source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, request = _loaded(source, lake_root, "incremental", "hard", ids=range(1, 21))
    _delete(source, table, (1, 4, 5, 12, 20))  # range ends and middles of ranges of 4 keys
    source.insert(table, make_rows(range(21, 23), base=LATER))  # past every range: read by the load
    monkeypatch.setenv(SLICE_ROWS_ENV, "4")
    messages: list[str] = []
    result = run_load(request, log=messages.append)
    assert result.rows_deleted == 5
    assert any("in 6 ranges of 4 Delta keys" in m for m in messages)  # 22 keys after the load
    assert_same_rows(source, table, request)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_soft_deletes_stamp_the_rows_and_a_returning_row_is_live_again(
    source: SourceDB, lake_root: Path, strategy: str
) -> None:
    table, request = _loaded(source, lake_root, strategy, "soft")
    _delete(source, table, (3, 7))

    before = datetime.now(UTC)
    result = run_load(request)
    assert result.rows_deleted == 2
    live, deleted = _live_and_deleted(request)
    assert live == source.rows(table) and deleted == [3, 7]
    stamps = [r[DELETED_AT] for r in destination_rows(request) if r[DELETED_AT] is not None]
    assert all(before <= stamp <= datetime.now(UTC) for stamp in stamps)

    request = after_success(request, result)
    assert run_load(request).rows_deleted == 0  # already stamped rows are not stamped again
    if strategy == "append_only":
        return  # a re-inserted row is appended as a new row; un-deleting is a merge's job
    source.insert(table, make_rows(range(3, 4), base=LATER))  # id 3 comes back
    run_load(request)
    live, deleted = _live_and_deleted(request)
    assert live == source.rows(table) and deleted == [7]


@pytest.mark.parametrize("strategy", ["full", "rolling"])
def test_full_and_rolling_reach_deletes_without_a_reconciliation(
    pg_source: SourceDB, lake_root: Path, strategy: str
) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 6), base=datetime.now(UTC) - timedelta(days=1)))
    window = {"rolling_column": "updated_at", "rolling_window_days": 7} if strategy == "rolling" else {}
    request = pg_source.request(table, strategy, lake_root, delete_mode="hard", **window)
    request = after_success(request, run_load(request))
    _delete(pg_source, table, (2,))
    result = run_load(request)
    assert result.rows_deleted is None  # the load's own commit removed the row
    assert_same_rows(pg_source, table, request)


def test_source_with_no_keys_deletes_nothing_and_says_why(source: SourceDB, lake_root: Path) -> None:
    table, request = _loaded(source, lake_root, "incremental", "hard")
    source.execute(f"DELETE FROM {source.quote(table)}")
    result = run_load(request)
    assert result.rows_deleted is None
    assert result.deletes_note is not None and "returned no keys" in result.deletes_note
    assert [r["id"] for r in destination_rows(request)] == list(range(1, 11))


def test_more_than_the_max_share_is_refused(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, request = _loaded(pg_source, lake_root, "check_and_load", "hard")
    _delete(pg_source, table, (1, 2, 3, 4, 5, 6))
    refused = run_load(request)
    assert refused.rows_deleted is None
    assert refused.deletes_note is not None and MAX_SHARE_ENV in refused.deletes_note
    assert "6 of 10 rows (60%)" in refused.deletes_note
    assert len(destination_rows(request)) == 10

    monkeypatch.setenv(MAX_SHARE_ENV, "0.75")
    assert run_load(request).rows_deleted == 6
    assert_same_rows(pg_source, table, request)

    monkeypatch.setenv(MAX_SHARE_ENV, "2")
    with pytest.raises(ConfigurationError, match=MAX_SHARE_ENV):
        run_load(request)


def test_delete_check_cron_decides_when_to_reconcile(pg_source: SourceDB, lake_root: Path) -> None:
    table, request = _loaded(pg_source, lake_root, "incremental", "hard")
    _delete(pg_source, table, (5,))
    just_now = datetime.now(UTC).isoformat()
    yearly = dataclasses.replace(request, delete_check_cron="0 0 1 1 *", last_delete_check_at=just_now)
    assert not deletes_due(yearly, datetime.now(UTC))
    assert run_load(yearly).rows_deleted is None
    assert len(destination_rows(request)) == 10

    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat()
    assert run_load(dataclasses.replace(yearly, last_delete_check_at=long_ago)).rows_deleted == 1
    assert_same_rows(pg_source, table, request)


def test_kill_mid_reconcile_then_rerun(pg_source: SourceDB, lake_root: Path) -> None:
    table, request = _loaded(pg_source, lake_root, "incremental", "hard")
    _delete(pg_source, table, (2, 9))
    pg_source.insert(table, make_rows(range(11, 13), base=LATER))
    uri = table_uri(request.lake_root, request.destination_table)

    killed_worker(request, "reconcile")  # the load committed, the delete commit never happened
    state = DeltaSession(uri).state(request.control_key)
    assert (state.version, state.txn_version) == (1, 2)
    assert [r["id"] for r in destination_rows(request)] == [*range(1, 13)]

    messages: list[str] = []
    rerun = run_load(request, log=messages.append)  # the stale request: the Delta table is ahead
    assert any("Delta table is ahead" in m for m in messages)
    assert rerun.rows_read == 0 and rerun.rows_deleted == 2
    state = DeltaSession(uri).state(request.control_key)  # a fresh look after the rerun's commits
    assert (state.version, state.txn_version) == (2, 3)
    assert state.last_watermark == rerun.watermark_after  # the delete commit repeats the watermark
    assert_same_rows(pg_source, table, request)


def test_kill_after_the_delete_commit_then_rerun(pg_source: SourceDB, lake_root: Path) -> None:
    table, request = _loaded(pg_source, lake_root, "append_only", "soft")
    _delete(pg_source, table, (4,))
    killed_worker(request, "commit")  # load + delete committed, never reported
    rerun = run_load(request)
    assert rerun.rows_read == 0 and rerun.rows_deleted == 0
    live, deleted = _live_and_deleted(request)
    assert live == pg_source.rows(table) and deleted == [4]


def test_backfill_resumed_after_a_kill_reconciles_rows_deleted_meanwhile(
    pg_source: SourceDB, lake_root: Path
) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 21)))
    request = pg_source.request(
        table, "chunked_backfill", lake_root, chunk_column="id", chunk_size=5, delete_mode="hard"
    )
    killed_worker(request, "chunk:2")
    _delete(pg_source, table, (3, 14))  # one in a committed chunk, one in a chunk still to load
    result = run_load(request)
    assert result.next_load_strategy == "incremental" and result.rows_deleted == 1
    assert [normalise(r) for r in destination_rows(request)] == pg_source.rows(table)
