"""The check functions on real Delta tables in tmp_path."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
from dagster import AssetCheckSeverity
from deltalake import DeltaTable, write_deltalake

from control_db.schedule import next_fire
from dataloader_defs.defs.asset_checks import (
    SourceFacts,
    check_freshness,
    check_primary_key,
    check_row_count,
    check_schema_drift,
)


def _table(tmp_path, data: dict) -> DeltaTable:
    path = str(tmp_path / "t")
    write_deltalake(path, pa.table(data))
    return DeltaTable(path)


def facts(count: int | None, before: int | None = None, cutoff=None, columns=("id",)) -> SourceFacts:
    return SourceFacts(
        row_count=count, columns=columns, origin="test", window_cutoff=cutoff, row_count_before=before
    )


def test_row_count_semantics_by_strategy(tmp_path):
    table = _table(tmp_path, {"id": [1, 2, 3]})
    assert check_row_count("full", facts(3), table).passed
    assert not check_row_count("full", facts(4), table).passed
    assert not check_row_count("full", facts(2), table).passed  # extra rows in a full load are wrong too
    for strategy in ("incremental", "append_only", "check_and_load", "chunked_backfill"):
        assert check_row_count(strategy, facts(2), table).passed  # source deletes are not propagated
        failed = check_row_count(strategy, facts(5), table)
        assert not failed.passed and failed.severity == AssetCheckSeverity.ERROR
        assert failed.metadata["missing_rows"].value == 2
    # A source that grew during the load: counts 3 before, 5 after -> 3 rows loaded is consistent.
    assert check_row_count("full", facts(5, before=3), table).passed
    assert not check_row_count("full", facts(6, before=4), table).passed
    unavailable = check_row_count("full", facts(None), table)
    assert not unavailable.passed and unavailable.severity == AssetCheckSeverity.WARN


def test_rolling_counts_inside_the_window_on_both_sides(tmp_path):
    today = datetime.now(UTC).date()
    table = _table(
        tmp_path, {"d": pa.array([today, today - timedelta(days=1), today - timedelta(days=30)], pa.date32())}
    )
    cutoff = today - timedelta(days=7)
    result = check_row_count("rolling", facts(2, cutoff=cutoff), table, rolling_column="d")
    assert result.passed and result.metadata["destination_rows"].value == 2
    ts = _table(
        tmp_path / "ts",
        {"t": pa.array([datetime.now(UTC), datetime(2000, 1, 1, tzinfo=UTC)], pa.timestamp("us", "UTC"))},
    )
    assert check_row_count(
        "rolling", facts(1, cutoff=date.today() - timedelta(days=7)), ts, rolling_column="t"
    ).passed


def test_primary_key_duplicates_and_nulls(tmp_path):
    assert check_primary_key(["id"], _table(tmp_path / "a", {"id": [1, 2, 3]})).passed
    dup = check_primary_key(["id", "k"], _table(tmp_path / "b", {"id": [1, 1, 2], "k": ["x", "x", "x"]}))
    assert not dup.passed and dup.metadata["duplicate_keys"].value == 1
    assert dup.metadata["rows_with_duplicate_keys"].value == 2
    nulls = check_primary_key(["id"], _table(tmp_path / "c", {"id": pa.array([1, None], pa.int64())}))
    assert not nulls.passed and nulls.metadata["null_key_rows"].value == 1
    assert check_primary_key([], None).passed


def test_freshness_against_cron(tmp_path):
    table = _table(tmp_path, {"id": [1]})
    assert check_freshness("*/5 * * * *", "UTC", table, next_fire=next_fire).passed
    later = datetime.now(UTC) + timedelta(hours=1)
    stale = check_freshness("*/5 * * * *", "UTC", table, next_fire=next_fire, now=later)
    assert not stale.passed and stale.severity == AssetCheckSeverity.WARN
    assert check_freshness("0 3 * * *", "Europe/Amsterdam", table, next_fire=next_fire, now=later).passed


def test_schema_drift(tmp_path):
    table = _table(tmp_path, {"id": [1], "a": ["x"]})
    assert check_schema_drift(facts(1, columns=("id", "a")), table).passed
    drift = check_schema_drift(facts(1, columns=("id", "b")), table)
    assert not drift.passed
    assert drift.metadata["source_only_columns"].value == "b"
    assert drift.metadata["delta_only_columns"].value == "a"
