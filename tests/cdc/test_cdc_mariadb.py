"""cdc on MariaDB end to end through `run_load`: a snapshot, then rounds of inserts, updates and deletes
(a key change, a TRUNCATE), each load equal to a `full` load of the same rows; crash safety.
Real server: the binlog MariaDB (`make cdc-maria-start`, tests/cdc/maria_binlog.py). Needs the `cdc`
strategy (pipes_workers/strategies/cdc.py): skipped where it is not there yet."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from maria_binlog import binlog_database, database_url

pytest.importorskip("pipes_workers.strategies.cdc", reason="the cdc strategy is not in this tree")

SUPPORT = str(Path(__file__).resolve().parents[1] / "pipes_workers")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

from loadtest_support import MariaDBSource, after_success, destination_rows, killed_worker  # noqa: E402

from dataloader_contract.request import LoadRequest  # noqa: E402
from pipes_workers.load import run_load  # noqa: E402

COLUMNS = (
    "id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2), ts TIMESTAMP(6) NULL, dt DATETIME(6), "
    "flag TINYINT(1), doc JSON, bl BLOB, e ENUM('ok','sad'), s SET('a','b'), bits BIT(5), yr YEAR, "
    "u8 BIGINT UNSIGNED, t TIME(6), f4 FLOAT"
)


@pytest.fixture(scope="module")
def maria_url() -> Iterator[str]:
    with binlog_database() as (server, name):
        yield database_url(server, name)


@pytest.fixture
def source(maria_url: str) -> Iterator[MariaDBSource]:
    db = MariaDBSource(maria_url)
    try:
        yield db
    finally:
        db.conn.close()


def typed_table(source: MariaDBSource, name: str) -> str:
    source.execute(f"CREATE TABLE {name} ({COLUMNS})")
    return name


def insert(source: MariaDBSource, table: str, ids: range) -> None:
    for i in ids:
        source.execute(
            f"INSERT INTO {table} VALUES (%s, %s, %s, '2024-03-31 01:00:00.000001', '2024-02-29 23:59:59.5', "
            "%s, %s, %s, %s, %s, %s, %s, %s, '12:34:56.000001', %s)",
            (
                i, f"name {i} ' \" \\ é", f"{i}.25", i % 2, f'{{"k": {i}}}', bytes([i % 256, 0, 255]),
                "sad" if i % 2 else "ok", "a,b" if i % 3 else "", i % 32, 1990 + i % 50, 2**64 - i, i / 3,
            ),
        )  # fmt: skip


def cdc_request(source: MariaDBSource, table: str, lake_root: Path) -> LoadRequest:
    return source.request(table, "cdc", lake_root, incremental_column=None, delete_mode="hard")


def assert_equals_full_load(request: LoadRequest) -> list[dict[str, Any]]:
    """The cdc table holds exactly the rows (values and types) a `full` load of the source holds now."""
    cdc = [{k: v for k, v in r.items() if not k.startswith("_dataloader")} for r in destination_rows(request)]
    full = dataclasses.replace(
        request,
        control_key=request.control_key + ".full",
        load_strategy="full",
        destination_table=request.destination_table + "_full",
        incremental_value=None,
        delete_mode="none",
    )
    run_load(full)
    expected = [
        {k: v for k, v in r.items() if not k.startswith("_dataloader")} for r in destination_rows(full)
    ]
    assert cdc == expected
    return cdc


def test_snapshot_then_three_rounds(source: MariaDBSource, lake_root: Path) -> None:
    table = typed_table(source, "rounds")
    insert(source, table, range(1, 6))
    request = cdc_request(source, table, lake_root)
    first = run_load(request)
    assert first.rows_read == 5 and first.committed
    assert first.watermark_after is not None and first.watermark_after.count(":") == 2
    assert_equals_full_load(request)
    request = after_success(request, first)

    insert(source, table, range(6, 10))  # round 1: inserts
    second = run_load(request)
    assert (second.rows_read, second.rows_written) == (4, 4)
    assert_equals_full_load(request)
    request = after_success(request, second)

    source.execute(f"UPDATE {table} SET amount = amount + 100, flag = 1 - flag WHERE id IN (1, 9)")  # round 2
    source.execute(f"UPDATE {table} SET name = 'renamed', s = 'b', doc = NULL WHERE id = 2")
    source.execute(f"UPDATE {table} SET name = 'twice' WHERE id = 2")
    third = run_load(request)
    assert third.rows_written == 3
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert rows[2]["name"] == "twice"
    request = after_success(request, third)

    source.execute(f"DELETE FROM {table} WHERE id IN (3, 7)")  # round 3: deletes, a key change
    source.execute(f"UPDATE {table} SET id = 100 WHERE id = 4")
    insert(source, table, range(50, 51))
    source.execute(f"DELETE FROM {table} WHERE id = 50")
    fourth = run_load(request)
    assert fourth.rows_deleted == 3  # 3, 7 and the old key 4: 50 came and went within the batch
    rows = {r["id"]: r for r in assert_equals_full_load(request)}
    assert 4 not in rows and 100 in rows
    request = after_success(request, fourth)

    source.execute(f"TRUNCATE TABLE {table}")
    insert(source, table, range(200, 202))
    run_load(request)
    assert [r["id"] for r in assert_equals_full_load(request)] == [200, 201]


@pytest.mark.parametrize("point", ["snapshot", "read"])
def test_crash_in_the_first_snapshot(source: MariaDBSource, lake_root: Path, point: str) -> None:
    table = typed_table(source, f"crash_snap_{point}")
    insert(source, table, range(1, 4))
    request = cdc_request(source, table, lake_root)
    killed_worker(request, point)
    insert(source, table, range(4, 6))
    request = after_success(request, run_load(request))
    insert(source, table, range(6, 7))
    run_load(request)
    assert_equals_full_load(request)


@pytest.mark.parametrize("point", ["read", "acknowledge", "commit"])
def test_crash_while_applying_changes(source: MariaDBSource, lake_root: Path, point: str) -> None:
    table = typed_table(source, f"crash_apply_{point}")
    insert(source, table, range(1, 4))
    request = cdc_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    insert(source, table, range(4, 6))
    source.execute(f"UPDATE {table} SET amount = amount + 1 WHERE id = 1")
    source.execute(f"DELETE FROM {table} WHERE id = 2")
    killed_worker(request, point)
    again = run_load(request)  # the control row never heard of the dead load
    assert_equals_full_load(request)
    if point != "read":  # the dead load committed: its changes are skipped, not applied twice
        assert again.rows_read == 0 and not again.committed
    request = after_success(request, again)
    source.execute(f"UPDATE {table} SET name = 'after the crash' WHERE id = 3")
    run_load(request)
    assert_equals_full_load(request)
