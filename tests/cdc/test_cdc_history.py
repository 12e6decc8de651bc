"""cdc with history_mode scd2: a snapshot, then rounds of updates (one leaving a TOASTed column
unchanged), deletes and a re-insert on PostgreSQL; the current versions equal a `full` load of the
source, closed versions end where the next starts (at the source's commit time), "as of" a past time
gives the source as it was then; a crash after the commit creates no second version; a MariaDB
round. Real servers: the logical-decoding PostgreSQL (5441) and the binlog MariaDB (3341)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from cdc_support import full_copy, insert, typed_table
from deltalake import DeltaTable, QueryBuilder
from loadtest_support import (
    MariaDBSource,
    PostgresSource,
    after_success,
    destination_rows,
    killed_worker,
    normalise,
)
from maria_binlog import binlog_database, database_url

from dataloader_contract.request import LoadRequest, table_uri
from dataloader_contract.result import LoadResult
from pipes_workers.lake.history import HISTORY_COLUMNS, IS_CURRENT, VALID_FROM, VALID_TO
from pipes_workers.load import run_load


@pytest.fixture
def source(cdc_pg_url: str) -> Iterator[PostgresSource]:
    """The source; the slots the test creates are dropped after it (the session's database is
    shared by every cdc test, and max_replication_slots is small)."""
    db = PostgresSource(cdc_pg_url)
    listed = "SELECT slot_name AS s FROM pg_replication_slots WHERE database = current_database()"
    before = {r["s"] for r in db.fetch(listed)}
    try:
        yield db
    finally:
        for slot in {r["s"] for r in db.fetch(listed)} - before:
            db.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            db.execute(f"DROP PUBLICATION IF EXISTS {db.quote(slot)}")
        db.conn.close()


def scd2_request(source: Any, table: str, lake_root: Path) -> LoadRequest:
    return source.request(
        table, "cdc", lake_root, incremental_column=None, delete_mode="hard", history_mode="scd2"
    )


def data(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in HISTORY_COLUMNS and not k.startswith("_dataloader")}


def versions(request: LoadRequest) -> list[dict[str, Any]]:
    """Every version, by id then _valid_from."""
    table = DeltaTable(table_uri(request.lake_root, request.destination_table)).to_pyarrow_table()
    ordered = pa.table(table).sort_by([("id", "ascending"), (VALID_FROM, "ascending")])
    return [normalise(r) for r in ordered.to_pylist()]


def of_key(request: LoadRequest, key: int) -> list[dict[str, Any]]:
    return [v for v in versions(request) if v["id"] == key]


def flags(request: LoadRequest) -> list[tuple[int, bool]]:
    """(id, _is_current) of every version, by id then _valid_from."""
    return [(v["id"], v[IS_CURRENT]) for v in versions(request)]


# Rows 1-3, then key 1 updated and key 2 deleted.
UPDATED_1_DELETED_2 = [(1, False), (1, True), (2, False), (3, True)]


def current(request: LoadRequest) -> list[dict[str, Any]]:
    return [data(v) for v in versions(request) if v[IS_CURRENT]]


def as_of(request: LoadRequest, moment: datetime) -> list[dict[str, Any]]:
    """The rows valid at `moment` (_valid_from <= t < coalesce(_valid_to, infinity)), data columns."""
    table = DeltaTable(table_uri(request.lake_root, request.destination_table))
    at = f"arrow_cast('{moment.astimezone(UTC).isoformat()}', 'Timestamp(Microsecond, Some(\"UTC\"))')"
    sql = f"SELECT * FROM t WHERE {VALID_FROM} <= {at} AND ({VALID_TO} > {at} OR {VALID_TO} IS NULL)"
    rows = pa.RecordBatchReader.from_stream(QueryBuilder().register("t", table).execute(sql)).read_all()
    return sorted((data(normalise(r)) for r in rows.to_pylist()), key=lambda r: r["id"])


def source_now(request: LoadRequest) -> list[dict[str, Any]]:
    """The source's rows as a `full` load of them lands (the reader's own type map)."""
    return [data(r) for r in full_copy(dataclasses.replace(request, history_mode="none"))]


def assert_closed_then_current(history: list[dict[str, Any]]) -> None:
    """A key's versions follow each other: each closed where the next starts, only the last current."""
    for older, newer in zip(history, history[1:], strict=False):
        assert not older[IS_CURRENT] and older[VALID_TO] == newer[VALID_FROM]
    assert history[-1][IS_CURRENT] and history[-1][VALID_TO] is None


def within(moment: datetime, start: datetime, end: datetime) -> bool:
    """`moment` between `start` and `end` (a microsecond of rounding allowed either side)."""
    slack = timedelta(microseconds=1)
    return start - slack <= moment <= end + slack


def test_scd2_snapshot_then_rounds_answers_as_of(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 6), big=True)
    request = scd2_request(source, table, lake_root)
    first = run_load(request)
    assert first.committed and first.versions_added == 5
    assert all(v[IS_CURRENT] and v[VALID_TO] is None for v in versions(request))
    assert current(request) == source_now(request)
    request = after_success(request, first)
    seen = [(datetime.now(UTC), source_now(request))]

    # Round 1: updates; the TOASTed `big` of rows 1 and 2 is left unchanged (pgoutput does not send it).
    toasted = source.fetch(f"SELECT big FROM {table} WHERE id = 1")[0]["big"]
    assert len(toasted) > 2000
    before = datetime.now(UTC)
    source.execute(f"UPDATE {table} SET amount = amount + 100, flag = NOT flag WHERE id IN (1, 2)")
    source.execute(f"UPDATE {table} SET name = 'renamed' WHERE id = 3")
    source.execute(f"UPDATE {table} SET name = 'twice' WHERE id = 3")  # one version: the batch's last
    source.execute(f"UPDATE {table} SET name = name WHERE id = 4")  # no change: no version
    insert(source, table, range(6, 7))
    after = datetime.now(UTC)
    second = run_load(request)
    assert (second.rows_written, second.versions_added, second.versions_closed) == (5, 4, 3)
    now = source_now(request)
    assert current(request) == now
    one = of_key(request, 1)
    assert len(one) == 2 and one[1]["big"] == toasted and one[0]["big"] == toasted
    assert one[1]["amount"] == one[0]["amount"] + 100
    assert within(one[1][VALID_FROM], before, after)  # the source's commit time
    for key in (1, 2, 3):
        assert_closed_then_current(of_key(request, key))
    assert [v["name"] for v in of_key(request, 3)][-1] == "twice" and len(of_key(request, 3)) == 2
    assert len(of_key(request, 4)) == 1
    request = after_success(request, second)
    seen.append((datetime.now(UTC), now))

    # Round 2: deletes, a change of the TOASTed value itself, a key change.
    before = datetime.now(UTC)
    source.execute(f"DELETE FROM {table} WHERE id IN (2, 6)")
    source.execute(f"UPDATE {table} SET big = 'short now' WHERE id = 1")
    source.execute(f"UPDATE {table} SET id = 40 WHERE id = 4")
    after = datetime.now(UTC)
    third = run_load(request)
    assert third.rows_deleted == 3 and third.committed
    now = source_now(request)
    assert current(request) == now
    for key in (2, 4, 6):
        history = of_key(request, key)
        assert history and not any(v[IS_CURRENT] for v in history), key
        assert within(history[-1][VALID_TO], before, after)
    assert [v["big"] for v in of_key(request, 1)] == [toasted, toasted, "short now"]
    request = after_success(request, third)
    seen.append((datetime.now(UTC), now))

    # Round 3: the deleted key comes back; its history has a gap.
    insert(source, table, range(2, 3), big=True)
    source.execute(f"UPDATE {table} SET ratio = -1 WHERE id = 5")  # big unchanged again
    fourth = run_load(request)
    now = source_now(request)
    assert current(request) == now
    two = of_key(request, 2)
    assert len(two) == 3 and two[1][VALID_TO] < two[2][VALID_FROM] and two[2][IS_CURRENT]
    assert of_key(request, 5)[-1]["big"] == of_key(request, 5)[0]["big"] is not None
    request = after_success(request, fourth)
    seen.append((datetime.now(UTC), now))

    for moment, rows in seen:
        assert as_of(request, moment) == rows, moment
    assert as_of(request, datetime(2000, 1, 1, tzinfo=UTC)) == []

    count = len(versions(request))
    nothing = run_load(request)
    assert not nothing.committed and len(versions(request)) == count


@pytest.mark.parametrize("point", ["read", "acknowledge", "commit"])
def test_a_crash_after_the_commit_creates_no_second_version(
    source: PostgresSource, lake_root: Path, point: str
) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 4), big=True)
    request = scd2_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute(f"UPDATE {table} SET amount = amount + 1 WHERE id = 1")  # big unchanged
    source.execute(f"DELETE FROM {table} WHERE id = 2")
    killed_worker(request, point)
    # The control row never heard of the dead load: the same request again.
    again = run_load(request)
    if point != "read":  # the dead load committed: its position is in Delta, nothing is applied twice
        assert again.rows_read == 0 and not again.committed
    assert flags(request) == UPDATED_1_DELETED_2
    assert current(request) == source_now(request)
    one = of_key(request, 1)
    assert one[1]["big"] == one[0]["big"] is not None
    request = after_success(request, again)
    source.execute(f"UPDATE {table} SET name = 'after the crash' WHERE id = 3")
    later = run_load(request)
    assert later.versions_added == 1 and current(request) == source_now(request)


def test_truncate_closes_every_version_it_removes(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 4))
    request = scd2_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute(f"TRUNCATE {table}")
    insert(source, table, range(3, 5))
    truncated = run_load(request)
    assert truncated.committed and current(request) == source_now(request)
    assert flags(request) == [
        (1, False),
        (2, False),
        (3, False),
        (3, True),
        (4, True),
    ]


def test_a_row_switched_to_history_needs_load_full(source: PostgresSource, lake_root: Path) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 3))
    plain = dataclasses.replace(scd2_request(source, table, lake_root), history_mode="none")
    request = dataclasses.replace(after_success(plain, run_load(plain)), history_mode="scd2")
    source.execute(f"UPDATE {table} SET name = 'x' WHERE id = 1")
    refused = run_load_error(request)
    assert "load_full" in refused
    rebuilt = run_load(dataclasses.replace(request, load_full=True))
    assert rebuilt.versions_added == 2 and current(request) == source_now(request)


def run_load_error(request: LoadRequest) -> str:
    try:
        run_load(request)
    except Exception as exc:  # noqa: BLE001  (the message is what the test reads)
        return str(exc)
    raise AssertionError("the load was not refused")


# -- MariaDB -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def maria_url() -> Iterator[str]:
    with binlog_database() as (server, name):
        yield database_url(server, name)


def test_scd2_on_mariadb(maria_url: str, lake_root: Path) -> None:
    source = MariaDBSource(maria_url)
    try:
        source.execute("CREATE TABLE hist (id BIGINT PRIMARY KEY, name TEXT, amount DECIMAL(12,2))")
        source.execute("INSERT INTO hist VALUES (1, 'a', 1.50), (2, 'b', 2.50), (3, 'c', 3.50)")
        request = scd2_request(source, "hist", lake_root)

        def load() -> LoadResult:
            nonlocal request
            result = run_load(request)
            request = after_success(request, result)
            return result

        load()
        started = datetime.now(UTC)
        seen = [(started, [data(r) for r in destination_rows(request)])]
        # The binlog dates changes in whole seconds: rounds a second apart stay in order.
        wait_for_next_second()
        before = datetime.now(UTC).replace(microsecond=0)
        source.execute("UPDATE hist SET name = 'a2' WHERE id = 1")
        source.execute("DELETE FROM hist WHERE id = 2")
        source.execute("INSERT INTO hist VALUES (4, 'd', 4.50)")
        after = datetime.now(UTC)
        changed = load()
        assert (changed.versions_added, changed.versions_closed) == (2, 2)
        assert current(request) == [
            {"id": 1, "name": "a2", "amount": Decimal("1.50")},
            {"id": 3, "name": "c", "amount": Decimal("3.50")},
            {"id": 4, "name": "d", "amount": Decimal("4.50")},
        ]
        one = of_key(request, 1)
        assert_closed_then_current(one)
        assert within(one[1][VALID_FROM], before, after)
        assert not of_key(request, 2)[-1][IS_CURRENT]
        seen.append((datetime.now(UTC), current(request)))
        wait_for_next_second()
        source.execute("UPDATE hist SET amount = 9 WHERE id IN (1, 3)")
        load()
        assert len(of_key(request, 1)) == 3 and len(of_key(request, 3)) == 2
        for moment, rows in seen:
            assert as_of(request, moment) == rows, moment
    finally:
        source.conn.close()


def wait_for_next_second() -> None:
    """Sleep into the next whole second (binlog times have no fraction)."""
    time.sleep(1.05 - datetime.now(UTC).microsecond / 1_000_000)


def test_load_full_on_a_history_table_adds_versions_and_closes_the_gone(
    source: PostgresSource, lake_root: Path
) -> None:
    table = typed_table(source)
    insert(source, table, range(1, 4), big=True)
    request = scd2_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    source.execute(f"UPDATE {table} SET name = 'changed' WHERE id = 1")
    source.execute(f"DELETE FROM {table} WHERE id = 2")
    reload = run_load(dataclasses.replace(request, load_full=True))
    assert (reload.versions_added, reload.versions_closed) == (1, 2)
    assert flags(request) == UPDATED_1_DELETED_2
    assert current(request) == source_now(request)
    request = after_success(request, reload)
    source.execute(f"UPDATE {table} SET name = 'after the snapshot' WHERE id = 3")
    assert run_load(request).versions_added == 1 and current(request) == source_now(request)
