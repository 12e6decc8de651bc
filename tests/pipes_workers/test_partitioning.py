"""partition_by: Delta partition columns (generated month of a date here), merges and deletes that
touch only the partitions their rows are in, a partitioning change refused without load_full,
maintenance within partitions — on PostgreSQL and MariaDB sources."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake
from loadtest_support import ODD, SourceDB, after_success, insert_control_row, normalise
from psycopg.types.json import Jsonb

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest, table_uri
from pipes_workers.lake.partition_moves import merge_pruning_term, stored_elsewhere
from pipes_workers.lake.partitioning import Partitioning
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.table_facts import add_actions
from pipes_workers.lake.unique_claim import UNIQUE_KEYS
from pipes_workers.load import run_load
from pipes_workers.validate import validate_control_rows

PART = "_part_month_event_date"
MONTHS = (date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10))
BASE = datetime(2026, 3, 20, 12, tzinfo=UTC)


def _rows(ids: range) -> list[tuple[Any, ...]]:
    """Ids interleaved over three months, so every month's files span the whole key range (a key
    range cannot prune them; only the partition can)."""
    return [
        (
            i,
            f"name {i}",
            Decimal("1.50") + i,
            BASE + timedelta(seconds=i),
            MONTHS[i % 3] + timedelta(days=i % 7),
        )
        for i in ids
    ]


def _session(request: LoadRequest) -> DeltaSession:
    return DeltaSession(table_uri(request.lake_root, request.destination_table))


def _commit_actions(request: LoadRequest) -> tuple[list[dict], list[dict], dict]:
    """The newest commit's add and remove actions and its commitInfo, read from the Delta log."""
    log = Path(table_uri(request.lake_root, request.destination_table)) / "_delta_log"
    newest = max(log.glob("*.json"), key=lambda path: int(path.stem))
    actions = [json.loads(line) for line in newest.read_text().splitlines() if line.strip()]
    adds = [a["add"] for a in actions if "add" in a]
    removes = [a["remove"] for a in actions if "remove" in a]
    info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
    return adds, removes, info


def _files_by_month(request: LoadRequest) -> dict[str, int]:
    table = _session(request).require()
    counts: dict[str, int] = {}
    for add in add_actions(table).to_pylist():
        month = add[f"partition.{PART}"]
        counts[month] = counts.get(month, 0) + 1
    return counts


def _rows_without_partition(request: LoadRequest) -> list[dict[str, Any]]:
    data = _session(request).read_arrow().drop_columns([PART]).sort_by("id")
    return [normalise(r) for r in data.to_pylist()]


def _partitioned_load(source: SourceDB, lake_root: Path, **fields: Any) -> tuple[str, LoadRequest]:
    table = source.events_table()
    source.insert(table, _rows(range(1, 61)))
    request = source.request(table, "incremental", lake_root, partition_by=("month(event_date)",), **fields)
    request = after_success(request, run_load(request))
    return table, request


@pytest.mark.parametrize("read", ["held", "streamed"])
def test_month_partitioned_merge_rewrites_only_the_changed_month(
    source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    """Held in memory (a small read) or streamed (a large one, spooled to local disk first), the
    merge reads and rewrites only the month its rows are in."""
    table, request = _partitioned_load(source, lake_root)
    if read == "streamed":
        monkeypatch.setenv("DATALOADER_SMALL_READ_MB", "0")  # every read is a large one
    delta = _session(request).require()
    assert delta.metadata().partition_columns == [PART]
    assert set(_files_by_month(request)) == {"2026-01", "2026-02", "2026-03"}
    files_before = _files_by_month(request)

    # Change every February row: their ids span the table's whole key range.
    later = source.ts(BASE + timedelta(days=1))
    source.execute(
        f"UPDATE {source.quote(table)} SET {source.quote(ODD)} = 'changed', updated_at = %s "
        "WHERE event_date >= %s AND event_date < %s",
        (later, date(2026, 2, 1), date(2026, 3, 1)),
    )
    result = run_load(request)
    assert result.rows_read == 20

    adds, removes, info = _commit_actions(request)
    assert {a["partitionValues"][PART] for a in adds} == {"2026-02"}
    assert {r["partitionValues"][PART] for r in removes} == {"2026-02"}
    assert len(removes) == files_before["2026-02"]
    metrics = info["operationMetrics"]
    # Without the pruning term the merge reads every month's files to look for the keys.
    assert (
        metrics["num_target_files_skipped_during_scan"] == files_before["2026-01"] + files_before["2026-03"]
    )
    assert metrics["num_target_files_scanned"] == files_before["2026-02"]
    assert f"{PART} = '2026-02'" in info["operationParameters"]["predicate"]

    expected = [normalise(r) for r in source.fetch(f"SELECT * FROM {source.quote(table)} ORDER BY id")]
    assert _rows_without_partition(request) == expected
    months = _session(request).read_arrow().sort_by("id").column(PART).to_pylist()
    assert months == [r["event_date"].strftime("%Y-%m") for r in expected]
    passed = {c.name: c.passed for c in result.checks}
    assert passed["row_count_reconciliation"] and passed["primary_key_unique"] and passed["schema_drift"]


def test_a_stream_longer_than_the_spool_is_merged_unpruned_and_right(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATALOADER_SPOOL_MAX_MB=0: the large read is merged as it streams, every month scanned, and
    the rows are the same."""
    table, request = _partitioned_load(pg_source, lake_root)
    files_before = _files_by_month(request)
    monkeypatch.setenv("DATALOADER_SMALL_READ_MB", "0")
    monkeypatch.setenv("DATALOADER_SPOOL_MAX_MB", "0")
    pg_source.execute(
        f"UPDATE {pg_source.quote(table)} SET {pg_source.quote(ODD)} = 'changed', updated_at = %s "
        "WHERE event_date >= %s AND event_date < %s",
        (pg_source.ts(BASE + timedelta(days=1)), date(2026, 2, 1), date(2026, 3, 1)),
    )
    assert run_load(request).rows_read == 20
    _, _, info = _commit_actions(request)
    assert info["operationMetrics"]["num_target_files_scanned"] == sum(files_before.values())
    assert info["operationParameters"]["mergePredicate"] == "target.id = source.id"  # no partition term
    expected = [normalise(r) for r in pg_source.fetch(f"SELECT * FROM {pg_source.quote(table)} ORDER BY id")]
    assert _rows_without_partition(request) == expected


def test_partitioning_change_needs_load_full(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, _rows(range(1, 10)))
    request = pg_source.request(table, "incremental", lake_root)
    request = after_success(request, run_load(request))
    partitioned = dataclasses.replace(request, partition_by=("month(event_date)",))
    with pytest.raises(ConfigurationError, match=r"partitioned by nothing; .* set load_full"):
        run_load(partitioned)
    assert _session(request).require().metadata().partition_columns == []

    reloaded = dataclasses.replace(partitioned, load_full=True)
    run_load(reloaded)
    assert _session(request).require().metadata().partition_columns == [PART]
    assert len(_rows_without_partition(request)) == 9


def test_hard_delete_touches_only_the_deleted_rows_partition(source: SourceDB, lake_root: Path) -> None:
    table, request = _partitioned_load(source, lake_root, delete_mode="hard")
    files_before = _files_by_month(request)
    source.execute(f"DELETE FROM {source.quote(table)} WHERE id IN (3, 6)")  # both in January
    result = run_load(request)
    assert result.rows_deleted == 2
    adds, removes, info = _commit_actions(request)
    assert {r["partitionValues"][PART] for r in removes} == {"2026-01"}
    assert {a["partitionValues"][PART] for a in adds} <= {"2026-01"}
    assert info["operationMetrics"]["num_target_files_scanned"] == files_before["2026-01"]
    assert sorted(r["id"] for r in _rows_without_partition(request)) == [
        i for i in range(1, 61) if i not in (3, 6)
    ]


def test_compaction_keeps_partitions_and_leaves_them_out_of_the_z_order(
    pg_source: SourceDB, lake_root: Path
) -> None:
    table, request = _partitioned_load(pg_source, lake_root)
    for i in range(61, 64):  # a few more small files per month
        pg_source.insert(table, _rows(range(i, i + 1)))
        request = after_success(request, run_load(request))
    session = DeltaSession(table_uri(request.lake_root, request.destination_table))
    session.compact(z_order_by=["id", PART])
    assert session.require().metadata().partition_columns == [PART]
    assert _files_by_month(request) == {"2026-01": 1, "2026-02": 1, "2026-03": 1}
    assert len(_rows_without_partition(request)) == 63


def test_derived_partition_of_a_non_temporal_column_is_a_configuration_error(
    pg_source: SourceDB, lake_root: Path
) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, _rows(range(1, 3)))
    request = pg_source.request(table, "full", lake_root, partition_by=("year(amount)",))
    with pytest.raises(ConfigurationError, match=r"year\(amount\) needs a timestamp or date column"):
        run_load(request)
    missing = dataclasses.replace(request, partition_by=("region",))
    with pytest.raises(ConfigurationError, match=r"partition_by column 'region' is not a column"):
        run_load(missing)


def test_pruning_term_names_the_partitions_of_the_rows() -> None:
    partitioning = Partitioning.parse(["region", "month(ts)", "n", "day"], table="t")
    assert partitioning.names == ["region", "_part_month_ts", "n", "day"]
    rows = pa.table(
        {
            "region": ["eu", "it's", None],
            "_part_month_ts": ["2026-01", "2026-01", "2026-02"],
            "n": pa.array([1.5, 2.5, 3.5]),  # floats get no literal: matched on the keys alone
            "day": pa.array([date(2026, 1, 2)] * 3),
        }
    )
    term = partitioning.pruning_term(rows)
    assert term == (
        "(target.`region` IN ('eu', 'it''s') OR target.`region` IS NULL) "
        "AND (target.`_part_month_ts` IN ('2026-01', '2026-02')) "
        "AND (target.`day` IN (DATE '2026-01-02'))"
    )
    with pytest.raises(ConfigurationError, match=r"'week\(ts\)' is neither"):
        Partitioning.parse(["week(ts)"], table="t")


def test_validate_names_partition_columns_that_do_not_fit_the_source(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB
) -> None:
    control_conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES ('part_src', 'postgresql', %s, 'literal')",
        (Jsonb(pg_source.config().config),),
    )
    events = pg_source.events_table()
    good = insert_control_row(control_conn, "p.good", "part_src", events, partition_by=["month(updated_at)"])
    bad = insert_control_row(
        control_conn, "p.bad", "part_src", events, partition_by=["year(amount)", "region"]
    )
    checks = {key: validate_control_rows(control_db_url, key)[0] for key in (good, bad)}
    assert checks[good].ok
    table = pg_source.quote(events)
    assert checks[bad].problems == (
        f"source table {table}: partition_by year(amount) needs a timestamp or date column; 'amount' is decimal128(12, 2)",
        f"source table {table}: partition_by column 'region' is not a column of the source rows",
    )


STRATEGY_FIELDS: dict[str, dict[str, Any]] = {
    "full": {},
    "append_only": {},
    "incremental": {"delete_mode": "soft"},
    "check_and_load": {},
    "rolling": {"rolling_column": "updated_at", "rolling_window_days": 3650},
    "chunked_backfill": {"chunk_column": "id", "chunk_size": 25},
}


@pytest.mark.parametrize("strategy", list(STRATEGY_FIELDS))
def test_every_strategy_keeps_the_partitioning(source: SourceDB, lake_root: Path, strategy: str) -> None:
    table = source.events_table()
    source.insert(table, _rows(range(1, 61)))
    request = source.request(
        table, strategy, lake_root, partition_by=("month(event_date)",), **STRATEGY_FIELDS[strategy]
    )
    for _ in range(3):  # a backfill takes a load per chunk
        result = run_load(request)
        request = after_success(request, result)
    source.insert(table, _rows(range(61, 70)))
    if strategy != "append_only":
        source.execute(
            f"UPDATE {source.quote(table)} SET {source.quote(ODD)} = 'changed', updated_at = %s WHERE id = 4",
            (source.ts(BASE + timedelta(days=2)),),
        )
    if strategy == "incremental":
        source.execute(f"DELETE FROM {source.quote(table)} WHERE id = 5")
    result = run_load(request)
    assert _session(request).require().metadata().partition_columns == [PART]
    stored = _session(request).read_arrow().sort_by("id")
    if strategy == "incremental":  # soft delete: the row stays, stamped
        deleted = stored.filter(pa.compute.is_valid(stored.column("_dataloader_deleted_at")))
        assert deleted.column("id").to_pylist() == [5]
        stored = stored.filter(pa.compute.is_null(stored.column("_dataloader_deleted_at")))
        stored = stored.drop_columns(["_dataloader_deleted_at"])
    expected = [normalise(r) for r in source.fetch(f"SELECT * FROM {source.quote(table)} ORDER BY id")]
    assert [normalise(r) for r in stored.drop_columns([PART]).to_pylist()] == expected
    assert stored.column(PART).to_pylist() == [r["event_date"].strftime("%Y-%m") for r in expected]
    passed = {c.name: c.passed for c in result.checks}
    assert passed["primary_key_unique"] and passed["schema_drift"], result.checks


def test_a_plain_date_partition_prunes_the_merge_too(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, _rows(range(1, 61)))
    request = pg_source.request(table, "incremental", lake_root, partition_by=("event_date",))
    request = after_success(request, run_load(request))
    day = MONTHS[1] + timedelta(days=1)  # ids 1 + 21k: 1, 22, 43
    pg_source.execute(
        f"UPDATE {pg_source.quote(table)} SET updated_at = %s WHERE event_date = %s",
        (BASE + timedelta(days=1), day),
    )
    assert run_load(request).rows_read == 3
    adds, removes, info = _commit_actions(request)
    assert {r["partitionValues"]["event_date"] for r in removes} == {day.isoformat()}
    assert info["operationMetrics"]["num_target_files_scanned"] == 1
    assert len(_session(request).read_arrow()) == 60


REGIONS = ("US", "EU", "APAC")


def _moving_rows(ids: range) -> list[tuple[Any, ...]]:
    """Ids interleaved over three months of `updated_at` (January, February, March 2026)."""
    return [
        (i, f"name {i}", Decimal("1.50") + i, BASE - timedelta(days=31 * (i % 3), seconds=-i), MONTHS[0])
        for i in ids
    ]


@pytest.mark.parametrize(
    ("partition_by", "column", "moves", "untouched"),
    [
        # id 3 moves US -> EU, id 4 (EU) changes in place: APAC is neither old nor new.
        ("region", "region", {3: "EU"}, "APAC"),
        # id 3 moves from March to April, id 4 (February) to March: January is neither.
        ("month(updated_at)", "_part_month_updated_at", {3: "2026-04", 4: "2026-03"}, "2026-01"),
    ],
)
@pytest.mark.parametrize("read", ["held", "streamed"])
def test_a_row_whose_partition_value_changes_moves_to_its_new_partition(
    source: SourceDB,
    lake_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    partition_by: str,
    column: str,
    moves: dict[int, str],
    untouched: str,
    read: str,
) -> None:
    if read == "streamed":
        monkeypatch.setenv("DATALOADER_SMALL_READ_MB", "0")  # spooled, then merged as a stream
    table = source.events_table()
    quoted = source.quote(table)
    source.execute(f"ALTER TABLE {quoted} ADD COLUMN region varchar(8)")
    source.insert(table, _moving_rows(range(1, 31)))
    for i, region in enumerate(REGIONS):
        source.execute(f"UPDATE {quoted} SET region = %s WHERE MOD(id, 3) = %s", (region, i))
    request = source.request(table, "incremental", lake_root, partition_by=(partition_by,))
    request = after_success(request, run_load(request))
    old = {r["id"]: r[column] for r in _session(request).read_arrow().to_pylist()}
    assert {old[3], old[4]} == ({"US", "EU"} if column == "region" else {"2026-03", "2026-02"})
    version = _session(request).require().version()
    files_untouched = sum(
        1
        for a in add_actions(_session(request).require()).to_pylist()
        if a[f"partition.{column}"] == untouched
    )

    later = {3: BASE + timedelta(days=15), 4: BASE + timedelta(days=1)}  # April 4th, March 21st
    for key in (3, 4):
        region = moves.get(key, old[key]) if column == "region" else REGIONS[key % 3]
        source.execute(
            f"UPDATE {quoted} SET {source.quote(ODD)} = 'moved', region = %s, updated_at = %s WHERE id = %s",
            (region, source.ts(later[key]), key),
        )
    result = run_load(request)
    assert result.rows_read == 2
    assert _session(request).require().version() == version + 1  # one commit

    stored = _session(request).read_arrow().sort_by("id")
    ids = stored.column("id").to_pylist()
    assert len(ids) == len(set(ids)) == 30, "a moved row was inserted again rather than updated"
    by_id = {r["id"]: r for r in stored.to_pylist()}
    for key in (3, 4):
        assert by_id[key][column] == moves.get(key, old[key])
    expected = [normalise(r) for r in source.fetch(f"SELECT * FROM {quoted} ORDER BY id")]
    derived = [column] if column.startswith("_part_") else []
    assert [normalise(r) for r in stored.drop_columns(derived).to_pylist()] == expected

    adds, removes, info = _commit_actions(request)
    changed = {old[3], old[4], *moves.values()}
    assert {a["partitionValues"][column] for a in adds} <= changed
    assert untouched not in {r["partitionValues"][column] for r in removes}
    # Still pruned: the partition neither the old nor the new rows are in is not read.
    assert info["operationMetrics"]["num_target_files_skipped_during_scan"] >= files_untouched > 0
    predicate = info["operationParameters"]["predicate"]
    assert all(f"'{value}'" in predicate for value in changed) and f"'{untouched}'" not in predicate
    # Every stored row of an incoming key is matched now, so a held merge claims unique keys again
    # (a streamed one claims nothing: its keys are checked by the scan).
    assert info.get(UNIQUE_KEYS) == ('["id"]' if read == "held" else None)
    passed = {c.name: c.passed for c in result.checks}
    assert passed["primary_key_unique"] and passed["row_count_reconciliation"], result.checks


def test_stored_rows_of_the_incoming_keys_outside_their_partitions(tmp_path: Path) -> None:
    uri = str(tmp_path / "t")
    stored = pa.table(
        {
            "a": [1, 1, 2, 2, 3],
            "b": ["x", "y", "x", "y", "x"],
            "region": pa.array(["US", "EU", "EU", None, "APAC"]),
            "v": [1, 2, 3, 4, 5],
        }
    )
    write_deltalake(uri, stored, partition_by=["region"])
    partitioning = Partitioning.parse(["region"], table="t")
    # (1, 'x') moves US -> EU, (2, 'y') NULL -> EU, (1, 'y') stays in EU; (2, 'x') is not incoming.
    rows = pa.table({"a": [1, 2, 1], "b": ["x", "y", "y"], "region": ["EU", "EU", "EU"], "v": [9, 9, 9]})
    assert partitioning.outside_condition(rows) == '("region" NOT IN (\'EU\') OR "region" IS NULL)'
    moved = stored_elsewhere(
        DeltaTable(uri), rows, ["a", "b"], ["region"], partitioning.outside_condition(rows)
    )
    assert sorted(moved.select(["a", "b", "region"]).to_pylist(), key=str) == [
        {"a": 1, "b": "x", "region": "US"},
        {"a": 2, "b": "y", "region": None},
    ]
    term = merge_pruning_term(DeltaTable(uri), rows, ["a", "b"], partitioning)
    assert term == "(target.`region` IN ('EU', 'US') OR target.`region` IS NULL)"
    # Rows already where their keys are stored: the term names only their own partitions.
    assert merge_pruning_term(DeltaTable(uri), rows.slice(2), ["a", "b"], partitioning) == (
        "(target.`region` IN ('EU'))"
    )
    with_null = pa.table({"a": [3], "b": ["x"], "region": pa.array([None], pa.string()), "v": [0]})
    assert partitioning.outside_condition(with_null) == '("region" IS NOT NULL)'
