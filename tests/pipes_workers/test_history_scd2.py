"""history_mode scd2 against real PostgreSQL and MariaDB sources and a real Delta table: "as of" a past
time after three rounds of updates and deletes, unchanged re-reads, kill -9 mid-load, and the checks.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from deltalake import DeltaTable, QueryBuilder, write_deltalake
from loadtest_support import ODD, SourceDB, after_success, killed_worker, make_rows, normalise

from dataloader_contract.request import LoadRequest, table_uri
from dataloader_contract.result import PK_UNIQUE, ROW_COUNT, LoadResult
from pipes_workers.delta_settings import SMALL_READ_ENV
from pipes_workers.lake.history import HISTORY_COLUMNS, IS_CURRENT, VALID_FROM, VALID_TO
from pipes_workers.load import attempt_load, run_load

DATA = ("id", ODD, "amount", "updated_at", "event_date")


def history(request: LoadRequest) -> list[dict[str, Any]]:
    """Every version in the Delta table, by id then _valid_from."""
    table = DeltaTable(table_uri(request.lake_root, request.destination_table)).to_pyarrow_table()
    return [
        normalise(r)
        for r in pa.table(table).sort_by([("id", "ascending"), (VALID_FROM, "ascending")]).to_pylist()
    ]


def as_of(request: LoadRequest, moment: datetime) -> list[dict[str, Any]]:
    """The rows as they were at `moment`, by the README's query (data columns only, by id)."""
    table = DeltaTable(table_uri(request.lake_root, request.destination_table))
    stamp = moment.astimezone(UTC).isoformat()
    at = f"arrow_cast('{stamp}', 'Timestamp(Microsecond, Some(\"UTC\"))')"
    names = ", ".join(f'"{name}"' for name in DATA)
    sql = (
        f"SELECT {names} FROM bronze WHERE {VALID_FROM} <= {at} AND ({VALID_TO} > {at} OR {VALID_TO} IS NULL)"
    )
    rows = pa.RecordBatchReader.from_stream(QueryBuilder().register("bronze", table).execute(sql)).read_all()
    return sorted((normalise(r) for r in rows.to_pylist()), key=lambda r: r["id"])


def scd2_request(
    source: SourceDB, table: str, lake_root: Path, strategy: str = "incremental", **fields: Any
) -> LoadRequest:
    """A history (scd2) request; deletes reconciled (`hard`: they close versions) unless overridden."""
    return source.request(
        table, strategy, lake_root, **{"history_mode": "scd2", "delete_mode": "hard", **fields}
    )


def check(result: LoadResult, name: str) -> Any:
    return next(c for c in result.checks if c.name == name)


def stamp(source: SourceDB, table: str, ids: str, **values: Any) -> datetime:
    """UPDATE rows `ids` (an SQL list) with `values` and updated_at = now; return that time."""
    now = datetime.now(UTC)
    sets = ", ".join(f"{source.quote(k)} = %s" for k in values)
    params = (*values.values(), source.ts(now))
    source.execute(f"UPDATE {source.quote(table)} SET {sets}, updated_at = %s WHERE id IN ({ids})", params)
    return now


@pytest.mark.parametrize("partition_by", [(), ("day(updated_at)",)])
def test_scd2_answers_as_of_after_three_rounds(
    source: SourceDB, lake_root: Path, partition_by: tuple[str, ...]
) -> None:
    """Also on a partitioned table: a new version lands in its own day's partition, the version it
    closes stays where it is."""
    table = source.events_table()
    source.insert(table, make_rows(range(1, 6), base=datetime.now(UTC) - timedelta(hours=1)))
    request = scd2_request(source, table, lake_root, partition_by=partition_by)
    snapshots: list[tuple[datetime, list[dict[str, Any]]]] = []

    def load() -> LoadResult:
        nonlocal request
        result = run_load(request)
        assert result.error is None, result.error
        assert set(result.failed_checks) <= {"freshness_against_cron"}, result.checks  # no cron here
        request = after_success(request, result)
        snapshots.append((datetime.now(UTC), source.rows(table)))
        return result

    first = load()
    assert first.rows_read == 5 and len(history(request)) == 5

    stamp(source, table, "1", amount=Decimal("10.00"))  # round 1: update 1, delete 2, insert 6
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 2")
    now = datetime.now(UTC)
    source.insert(table, [(6, "name 6", Decimal("6.00"), now, now.date())])
    load()
    stamp(source, table, "1, 3", amount=Decimal("20.00"))  # round 2: update 1 and 3, delete 4
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 4")
    load()
    stamp(source, table, "6", **{ODD: "renamed"})  # round 3: update 6, delete 1
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 1")
    last = load()

    versions = history(request)
    # 5 first + (1 update + 1 insert) + 2 updates + 1 update; deletes close, never remove
    assert len(versions) == 10
    assert {r["id"]: r[IS_CURRENT] for r in versions if r[IS_CURRENT]} == {3: True, 5: True, 6: True}
    assert all(r[VALID_FROM].tzinfo is not None for r in versions)
    assert all((r[VALID_TO] is None) == r[IS_CURRENT] for r in versions)
    for moment, expected in snapshots:
        assert as_of(request, moment) == expected, moment
    before_any = snapshots[0][0] - timedelta(hours=2)
    assert as_of(request, before_any) == []
    assert last.destination_row_count == 3  # the current rows, as the asset's dagster/row_count
    assert check(last, ROW_COUNT).passed and check(last, PK_UNIQUE).passed
    assert check(last, PK_UNIQUE).metadata["rule"] == "one current row per key (scd2)"
    assert check(last, ROW_COUNT).metadata["rule"] == "destination >= source, current rows (scd2)"
    stored = DeltaTable(table_uri(request.lake_root, request.destination_table))
    assert stored.metadata().partition_columns == (["_part_day_updated_at"] if partition_by else [])
    if partition_by:
        days = {r["id"]: r["_part_day_updated_at"] for r in versions if r[IS_CURRENT]}
        assert days[3] == datetime.now(UTC).strftime("%Y-%m-%d")  # updated today: today's partition


# "64": the changed rows are merged from memory; "0": they are read again and merged as a stream.
@pytest.mark.parametrize("small_read_mb", ["64", "0"])
def test_unchanged_reread_creates_no_version(
    source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch, small_read_mb: str
) -> None:
    monkeypatch.setenv(SMALL_READ_ENV, small_read_mb)
    table = source.events_table()
    source.insert(table, make_rows(range(1, 4)))
    request = scd2_request(source, table, lake_root, incremental_lookback="100000 days")
    request = after_success(request, run_load(request))
    again = run_load(request)  # the lookback re-reads every row, unchanged
    assert again.rows_read == 3
    assert again.versions_added == 0 and again.versions_closed == 0
    versions = history(request)
    assert len(versions) == 3 and all(r[IS_CURRENT] for r in versions)

    stamp(source, table, "2", amount=Decimal("7.77"))
    changed = run_load(after_success(request, again))
    assert changed.versions_added == 1 and changed.versions_closed == 1
    assert len(history(request)) == 4


# read: killed before any commit; reconcile: the load's MERGE committed, its delete pass not yet;
# commit: both committed, the control row never heard of them.
@pytest.mark.parametrize("crash_after", ["read", "reconcile", "commit"])
def test_kill_mid_load_then_rerun_adds_no_second_version(
    source: SourceDB, lake_root: Path, crash_after: str
) -> None:
    table = source.events_table()
    source.insert(table, make_rows(range(1, 5)))
    request = scd2_request(source, table, lake_root)
    request = after_success(request, run_load(request))
    changed_at = stamp(source, table, "1, 2", amount=Decimal("5.00"))
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 3")

    killed_worker(request, crash_after)  # SIGKILL
    rerun = run_load(request)  # the same, stale request: the control row never heard of the crash
    assert rerun.error is None and check(rerun, PK_UNIQUE).passed

    versions = history(request)
    assert len(versions) == 6  # 4 first versions + one new version each for ids 1 and 2
    closed = {r["id"]: r[VALID_TO] for r in versions if not r[IS_CURRENT]}
    assert sorted(closed) == [1, 2, 3]
    assert closed[1] == closed[2] == changed_at  # the new version's _valid_from (its updated_at)
    assert closed[3] > changed_at  # closed by the delete pass, at its own time
    assert as_of(request, datetime.now(UTC)) == source.rows(table)


def test_checks_fail_for_two_current_rows_of_a_key(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = scd2_request(pg_source, table, lake_root)
    request = after_success(request, run_load(request))
    stamp(pg_source, table, "1", amount=Decimal("2.00"))
    good = run_load(request)
    assert check(good, PK_UNIQUE).passed and check(good, ROW_COUNT).passed
    assert check(good, ROW_COUNT).metadata["destination_rows"] == 3  # current rows, not the 4 versions

    uri = table_uri(request.lake_root, request.destination_table)
    current = pa.table(DeltaTable(uri).to_pyarrow_table())
    duplicate = current.filter(pa.compute.and_(pa.compute.equal(current["id"], 1), current[IS_CURRENT]))
    write_deltalake(uri, duplicate, mode="append")  # a broken table: key 1 has two current rows
    broken = run_load(after_success(request, good))
    pk = check(broken, PK_UNIQUE)
    assert not pk.passed and pk.metadata["duplicate_keys"] == 1


def test_rolling_scd2_closes_rows_deleted_inside_the_window_only(
    pg_source: SourceDB, lake_root: Path
) -> None:
    table = pg_source.events_table()
    now = datetime.now(UTC)
    rows = make_rows(range(1, 4), base=now - timedelta(hours=1))
    old = [(4, "old", Decimal("1.00"), now - timedelta(days=30), (now - timedelta(days=30)).date())]
    pg_source.insert(table, [*rows, *old])
    request = scd2_request(
        pg_source,
        table,
        lake_root,
        "rolling",
        rolling_column="updated_at",
        rolling_window_days=7,
        delete_mode="none",
    )
    first = run_load(request)
    assert first.rows_read == 3 and len(history(request)) == 3  # id 4 is outside the window

    pg_source.execute(f"DELETE FROM {pg_source.quote(table)} WHERE id = 2")
    stamp(pg_source, table, "3", amount=Decimal("9.00"))
    second = run_load(request)
    assert second.error is None
    current = {r["id"] for r in history(request) if r[IS_CURRENT]}
    assert current == {1, 3}
    assert second.versions_closed == 2 and second.versions_added == 1  # 2 deleted, 3 changed
    assert check(second, ROW_COUNT).passed


def test_load_full_keeps_history(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = scd2_request(pg_source, table, lake_root, delete_mode="none")
    request = after_success(request, run_load(request))
    pg_source.execute(f"DELETE FROM {pg_source.quote(table)} WHERE id = 3")
    stamp(pg_source, table, "1", amount=Decimal("3.00"))
    full = run_load(dataclasses.replace(request, load_full=True))
    assert full.strategy == "incremental" and full.rows_read == 2
    versions = history(request)
    assert len(versions) == 4  # nothing overwritten: id 1 got a version, id 3 was closed
    assert {r["id"] for r in versions if r[IS_CURRENT]} == {1, 2}
    assert {c for c in versions[0]} >= set(HISTORY_COLUMNS)


def test_check_and_load_keeps_history(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 4)))
    request = scd2_request(pg_source, table, lake_root, "check_and_load", delete_mode="none")
    request = after_success(request, run_load(request))
    skipped = run_load(request)
    assert skipped.skipped and skipped.versions_added is None
    stamp(pg_source, table, "2", amount=Decimal("4.00"))
    changed = run_load(request)
    assert changed.versions_added == 1 and changed.versions_closed == 1
    assert [(r["id"], r[IS_CURRENT]) for r in history(request)] == [
        (1, True),
        (2, False),
        (2, True),
        (3, True),
    ]


def test_a_row_stamped_in_the_future_is_valid_from_the_load(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, [(1, "far", Decimal("1.00"), datetime(2087, 1, 1, tzinfo=UTC), None)])
    before = datetime.now(UTC)
    run_load(scd2_request(pg_source, table, lake_root))
    (version,) = history(scd2_request(pg_source, table, lake_root))
    assert before <= version[VALID_FROM] <= datetime.now(UTC)


def test_turning_history_off_needs_load_full(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 3)))
    request = scd2_request(pg_source, table, lake_root, delete_mode="none")
    request = after_success(request, run_load(request))
    plain = dataclasses.replace(request, history_mode="none")
    refused = attempt_load(plain)
    assert refused.error is not None and refused.error.kind == "configuration"
    assert "keeps history" in refused.error.message and "load_full" in refused.error.message
    replaced = run_load(dataclasses.replace(plain, load_full=True))  # a full reload: current rows only
    assert replaced.strategy == "full"
    assert (
        IS_CURRENT
        not in DeltaTable(table_uri(lake_root, request.destination_table)).to_pyarrow_table().schema.names
    )
