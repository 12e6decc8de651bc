"""full: overwrite in one commit (schema replaced); load_full on other strategies."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
from loadtest_support import SourceDB, after_success, assert_same_rows, destination_rows, make_rows

from dataloader_contract.request import table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load


def test_full_mirrors_the_source(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 6)))
    request = source.request(table, "full", lake_root, incremental_column=None)
    first = run_load(request)
    assert first.rows_read == 5 and first.delta_version == 0 and first.bytes_written > 0
    assert_same_rows(source, table, request)

    source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 3")
    source.execute(f"UPDATE {source.quote(table)} SET amount = 7.25 WHERE id = 1")
    source.insert(table, make_rows(range(6, 8)))
    second = run_load(request)
    assert second.rows_read == 6 and second.delta_version == 1
    assert_same_rows(source, table, request)

    third = run_load(request)  # identical re-run: same rows, one more commit
    assert third.delta_version == 2
    assert_same_rows(source, table, request)


def test_full_replaces_the_schema(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 3)))
    request = pg_source.request(table, "full", lake_root, incremental_column=None)
    run_load(request)
    pg_source.execute(f"ALTER TABLE {pg_source.quote(table)} ALTER COLUMN amount TYPE text")
    pg_source.execute(f"ALTER TABLE {pg_source.quote(table)} ADD COLUMN extra int DEFAULT 4")
    run_load(request)
    assert_same_rows(pg_source, table, request)
    assert destination_rows(request)[0]["extra"] == 4


def test_load_full_reloads_an_incremental_table(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    request = source.request(table, "incremental", lake_root)
    request = after_success(request, run_load(request))
    # a row changed without moving its stamp is invisible to incremental; load_full picks it up
    source.execute(f"UPDATE {source.quote(table)} SET amount = 0.01 WHERE id = 2")
    forced = run_load(dataclasses.replace(request, load_full=True))
    assert forced.load_full_done and forced.rows_read == 3
    assert forced.watermark_after == request.incremental_value
    assert_same_rows(source, table, request)
    request = after_success(request, forced)
    assert not request.load_full
    assert run_load(request).rows_read == 0


def test_full_streams_many_batches(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.execute(
        f"INSERT INTO {pg_source.quote(table)} (id, amount, updated_at) "
        "SELECT g, g / 100.0, timestamptz '2024-01-01' + g * interval '1 microsecond' "
        "FROM generate_series(1, 300000) AS g"
    )
    request = pg_source.request(table, "full", lake_root)
    messages: list[str] = []
    result = run_load(request, log=messages.append)
    assert result.rows_read == 300_000
    assert result.watermark_after == "2024-01-01T00:00:00.300000+00:00"
    assert any("read 300,000 rows in total" in m for m in messages)
    data = DeltaSession(table_uri(lake_root, request.destination_table)).read_arrow()
    assert data.num_rows == 300_000 and pc.max(data.column("amount")).as_py() == Decimal("3000.00")
    assert pc.count_distinct(data.column("id")).as_py() == 300_000
    print(f"300k rows loaded in {result.seconds} s")


def _key_check(result) -> dict:
    (check,) = [c for c in result.checks if c.name == "primary_key_unique"]
    return {"passed": check.passed, **check.metadata}


def test_full_proves_key_uniqueness_from_keys_read_in_order(source: SourceDB, lake_root: Path) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 6)))
    check = _key_check(run_load(source.request(table, "full", lake_root, incremental_column=None)))
    assert check["passed"] and check["rows"] == 5 and "strictly increasing" in check["evidence"]


def test_full_scans_the_keys_when_they_arrive_out_of_order(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(5, 0, -1)))  # heap order 5, 4, 3, 2, 1
    check = _key_check(run_load(pg_source.request(table, "full", lake_root, incremental_column=None)))
    assert check["passed"] and check["rows"] == 5 and "evidence" not in check


def test_full_of_a_source_with_duplicate_keys_fails_the_key_check(source: SourceDB, lake_root: Path) -> None:
    table = f"nokey_{uuid.uuid4().hex[:8]}"
    q = source.quote(table)
    source.execute(f"CREATE TABLE {q} (id bigint, name varchar(20))")
    for row in ((1, "a"), (2, "b"), (2, "c"), (3, "d"), (None, "e")):
        source.execute(f"INSERT INTO {q} (id, name) VALUES (%s, %s)", row)
    check = _key_check(run_load(source.request(table, "full", lake_root, incremental_column=None)))
    assert not check["passed"] and check["duplicate_keys"] == 1 and check["null_key_rows"] == 1
    assert "evidence" not in check
