"""Unique keys carried from commit to commit: a merge of unique keys onto a table with unique keys
passes the key check without scanning the table; anything that could repeat a key ends the chain."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import CommitProperties, write_deltalake
from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows

import pipes_workers.lake.table_facts as table_facts
from dataloader_contract.request import LoadRequest, table_uri
from dataloader_contract.result import LoadResult
from pipes_workers.lake.key_uniqueness import tally_keys
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.unique_claim import UNIQUE_KEYS, UNIQUE_KEYS_BASE, UNIQUE_KEYS_REFUSED
from pipes_workers.load import run_load

LATER = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def key_scans(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Delta tables whose key columns were scanned (the real scan still runs)."""
    scanned: list[str] = []
    original: Callable[..., pa.Table] = table_facts.stored_keys

    def counting(table: Any, keys: Any) -> pa.Table:
        scanned.append(table.table_uri)
        return original(table, keys)

    monkeypatch.setattr(table_facts, "stored_keys", counting)
    return scanned


def _key_check(result: LoadResult) -> dict:
    (check,) = [c for c in result.checks if c.name == "primary_key_unique"]
    return {"passed": check.passed, **check.metadata}


def _change(source: SourceDB, table: str, ids: range, *, update: int | None = None) -> None:
    """New rows `ids` (stamped a day per id after LATER, so each change is past the last
    watermark), and optionally row `update` stamped with them."""
    base = LATER + timedelta(days=ids.start)
    source.insert(table, make_rows(ids, base=base))
    if update is not None:
        source.execute(
            f"UPDATE {source.quote(table)} SET amount = 5, updated_at = %s WHERE id = %s",
            (source.ts(base), update),
        )


def _loaded(pg_source: SourceDB, lake_root: Path) -> tuple[str, LoadRequest]:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 6)))
    request = pg_source.request(table, "incremental", lake_root)
    return table, after_success(request, run_load(request))


def test_merges_carry_the_key_check_without_scanning(
    pg_source: SourceDB, lake_root: Path, key_scans: list[str]
) -> None:
    table, request = _loaded(pg_source, lake_root)
    key_scans.clear()

    _change(pg_source, table, range(6, 8), update=2)
    second = run_load(request)
    # No claim yet (the first load created the table): one scan of the keys before the merge.
    assert len(key_scans) == 1
    check = _key_check(second)
    assert check["passed"] and check["rows"] == 7 and "unique-keys claim" in check["evidence"]

    request = after_success(request, second)
    key_scans.clear()
    _change(pg_source, table, range(8, 10), update=3)
    third = run_load(request)
    assert key_scans == [] and _key_check(third)["passed"] and _key_check(third)["rows"] == 9

    request = after_success(request, third)
    empty = run_load(request)  # nothing changed: no commit, the claim still covers the table
    assert empty.rows_read == 0 and key_scans == [] and _key_check(empty)["passed"]


def test_maintenance_commits_keep_the_claim(
    pg_source: SourceDB, lake_root: Path, key_scans: list[str]
) -> None:
    table, request = _loaded(pg_source, lake_root)
    for ids in (range(6, 8), range(8, 10)):
        _change(pg_source, table, ids)
        request = after_success(request, run_load(request))
    destination = DeltaSession(table_uri(lake_root, request.destination_table))
    destination.compact(z_order_by=["id"])
    key_scans.clear()
    check = _key_check(run_load(request))
    assert check["passed"] and "unique-keys claim" in check["evidence"] and key_scans == []


def test_a_foreign_write_ends_the_chain_and_its_duplicate_is_found(
    pg_source: SourceDB, lake_root: Path, key_scans: list[str]
) -> None:
    table, request = _loaded(pg_source, lake_root)
    _change(pg_source, table, range(6, 8))
    request = after_success(request, run_load(request))
    uri = table_uri(lake_root, request.destination_table)
    stored = DeltaSession(uri).read_arrow()
    write_deltalake(uri, stored.slice(0, 1), mode="append")  # someone else appends id 1 again
    key_scans.clear()

    check = _key_check(run_load(request))
    assert not check["passed"] and check["duplicate_keys"] == 1 and "evidence" not in check
    assert key_scans  # the chain ended: the keys were scanned

    _change(pg_source, table, range(20, 22))
    check = _key_check(run_load(request))  # a merge onto a table with a duplicate claims nothing
    assert not check["passed"] and check["duplicate_keys"] == 1


def _loaded_without_source_key(
    pg_source: SourceDB, lake_root: Path, strategy: str
) -> tuple[str, LoadRequest]:
    """A source table with no key constraint (ids 1, 2), loaded once; returns its quoted name."""
    table = f"nokey_{uuid.uuid4().hex[:8]}"
    q = pg_source.quote(table)
    pg_source.execute(f"CREATE TABLE {q} (id bigint, updated_at timestamptz)")
    pg_source.execute(f"INSERT INTO {q} VALUES (1, '2024-01-01'), (2, '2024-01-02')")
    request = pg_source.request(table, strategy, lake_root)
    return q, after_success(request, run_load(request))


def test_a_merge_of_repeated_keys_claims_nothing(pg_source: SourceDB, lake_root: Path) -> None:
    q, request = _loaded_without_source_key(pg_source, lake_root, "incremental")
    pg_source.execute(f"INSERT INTO {q} VALUES (3, '2024-02-01'), (3, '2024-02-02')")
    check = _key_check(run_load(request))
    assert not check["passed"] and check["duplicate_keys"] == 1 and "evidence" not in check


def _write(uri: str, ids: list[int], metadata: dict[str, str] | None = None) -> None:
    write_deltalake(
        uri,
        pa.table({"id": pa.array(ids, pa.int64())}),
        mode="append",
        commit_properties=CommitProperties(custom_metadata=metadata) if metadata else None,
    )


def test_a_claim_holds_only_directly_on_its_base_and_for_its_keys(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    _write(uri, [1, 2])  # version 0
    _write(uri, [3], {UNIQUE_KEYS: '["id"]', UNIQUE_KEYS_BASE: "0"})  # version 1, on 0
    assert DeltaSession(uri).proven_unique_version(["id"]) == 1
    assert DeltaSession(uri).proven_unique_version(["id", "k"]) is None
    _write(uri, [4], {UNIQUE_KEYS: '["id"]', UNIQUE_KEYS_BASE: "1"})  # version 2, on 1
    assert DeltaSession(uri).proven_unique_version(["id"]) == 2
    # A claim made onto version 1 but committed after someone else's version 3: not on its base.
    _write(uri, [5])
    _write(uri, [6], {UNIQUE_KEYS: '["id"]', UNIQUE_KEYS_BASE: "2"})
    assert DeltaSession(uri).proven_unique_version(["id"]) is None


def test_deletes_carry_the_claim(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    destination = DeltaSession(uri)
    rows = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "v": ["a", "b", "c"]})
    destination.overwrite(rows, CommitMarker("k", 1, "full"))
    assert destination.proven_unique_version(["id"]) is None
    change = pa.table({"id": pa.array([3, 4], pa.int64()), "v": ["C", "d"]})
    merged = destination.merge(change, ["id"], CommitMarker("k", 2, "incremental"))
    assert destination.proven_unique_version(["id"]) == merged.delta_version
    gone = pa.table({"id": pa.array([2], pa.int64())})
    deleted, removed = destination.delete_rows(gone, ["id"], CommitMarker("k", 3, "incremental"))
    assert removed == 1 and destination.proven_unique_version(["id"]) == deleted.delta_version


def test_the_key_scan_reads_text_and_composite_keys(tmp_path: Path) -> None:
    """Without a claim the keys are scanned; text keys come back from delta-rs's engine as views."""
    uri = str(tmp_path / "t")
    names = ["Customer Name; x", "k"]
    rows = pa.table({names[0]: ["a", "b", "a"], "k": pa.array([1, 2, 1], pa.int32()), "v": [1, 2, 3]})
    write_deltalake(uri, rows)
    keys = DeltaSession(uri).key_columns(names)
    assert keys is not None and keys.schema.field(names[0]).type == pa.string()
    tally = tally_keys(names, keys)
    assert tally.duplicate_keys == 1 and tally.samples == ("Customer Name; x=a, k=1 (2x)",)


def _appending(pg_source: SourceDB, lake_root: Path, ids: range = range(1, 6)) -> tuple[str, LoadRequest]:
    """An append_only table's first load (its key check proven by the order it wrote)."""
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(ids))
    request = pg_source.request(table, "append_only", lake_root)
    first = run_load(request)
    assert "strictly increasing" in _key_check(first)["evidence"]
    return table, after_success(request, first)


def _newest_commit(request: LoadRequest) -> dict[str, Any]:
    return DeltaSession(table_uri(request.lake_root, request.destination_table)).require().history(1)[0]


def test_appends_above_the_table_carry_the_key_check_without_scanning(
    pg_source: SourceDB, lake_root: Path, key_scans: list[str]
) -> None:
    table, request = _appending(pg_source, lake_root)
    key_scans.clear()
    _change(pg_source, table, range(6, 9))
    second = run_load(request)
    # No claim yet: one scan of the keys before the append, none after it.
    assert second.rows_read == 3 and len(key_scans) == 1
    assert _key_check(second)["passed"] and "unique-keys claim" in _key_check(second)["evidence"]
    assert _newest_commit(request)[UNIQUE_KEYS] == '["id"]'

    request = after_success(request, second)
    key_scans.clear()
    _change(pg_source, table, range(9, 12))
    third = run_load(request)
    assert third.rows_read == 3 and key_scans == []
    assert _key_check(third)["passed"] and _key_check(third)["rows"] == 11
    assert_same_rows(pg_source, table, request)


def test_an_append_below_the_table_keys_is_written_again_without_a_claim(
    pg_source: SourceDB, lake_root: Path, key_scans: list[str]
) -> None:
    table, request = _appending(pg_source, lake_root, range(10, 15))
    _change(pg_source, table, range(15, 17))
    claimed = run_load(request)
    request = after_success(request, claimed)
    # New rows, by their stamp, whose keys sit below the table's: unique, but no claim can show it.
    pg_source.insert(table, make_rows(range(3, 5), base=LATER + timedelta(days=400)))
    messages: list[str] = []
    key_scans.clear()

    broken = run_load(request, log=messages.append)

    assert broken.rows_read == 2 and any("without a unique-keys claim" in m for m in messages)
    assert broken.delta_version == claimed.delta_version + 1  # the stopped write committed nothing
    newest = _newest_commit(request)
    assert UNIQUE_KEYS not in newest and newest[UNIQUE_KEYS_REFUSED]
    check = _key_check(broken)
    assert check["passed"] and check["rows"] == 9 and "evidence" not in check and len(key_scans) == 1
    assert_same_rows(pg_source, table, request)

    request = after_success(request, broken)
    key_scans.clear()
    _change(pg_source, table, range(500, 502))  # stamped after the rows above
    later = run_load(request)  # refused before: no claim tried (no scan before), the check scans
    assert later.rows_read == 2 and len(key_scans) == 1 and _key_check(later)["passed"]
    assert _newest_commit(request)[UNIQUE_KEYS_REFUSED]


def test_an_append_that_repeats_a_key_claims_nothing_and_the_duplicate_is_found(
    pg_source: SourceDB, lake_root: Path
) -> None:
    q, request = _loaded_without_source_key(pg_source, lake_root, "append_only")
    pg_source.execute(f"INSERT INTO {q} VALUES (3, '2024-02-01'), (4, '2024-02-02')")
    request = after_success(request, run_load(request))
    assert _newest_commit(request)[UNIQUE_KEYS] == '["id"]'
    pg_source.execute(f"INSERT INTO {q} VALUES (5, '2024-03-01'), (5, '2024-03-02')")

    check = _key_check(run_load(request))

    assert not check["passed"] and check["duplicate_keys"] == 1
    assert UNIQUE_KEYS not in _newest_commit(request)
