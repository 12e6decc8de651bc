"""The worker's check functions on real Delta tables in tmp_path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
from deltalake import write_deltalake
from session_support import session_without_source

from pipes_workers.check_freshness import check_freshness
from pipes_workers.checks import (
    check_primary_key,
    check_row_count,
    check_schema_drift,
    evaluate_checks,
)
from pipes_workers.lake.session import DeltaSession
from pipes_workers.sources.base import SourceColumn


def _table(tmp_path, data: dict) -> DeltaSession:
    path = str(tmp_path / "t")
    write_deltalake(path, pa.table(data))
    return DeltaSession(path)


def test_row_count_semantics_by_strategy():
    assert check_row_count("full", 3, 3, method="read snapshot").passed
    assert not check_row_count("full", 4, 3, method="read snapshot").passed
    extra = check_row_count("full", 2, 3, method="read snapshot")  # extra rows in a full load are wrong too
    assert not extra.passed and extra.metadata["extra_rows"] == 1
    for strategy in ("incremental", "append_only", "check_and_load", "chunked_backfill"):
        assert check_row_count(strategy, 2, 3, method="before the read").passed  # deletes not propagated
        failed = check_row_count(strategy, 5, 3, method="before the read")
        assert not failed.passed and failed.severity == "ERROR"
        assert failed.metadata["missing_rows"] == 2
    unavailable = check_row_count("full", None, 3, method=None)
    assert not unavailable.passed and unavailable.severity == "WARN"


def test_rolling_counts_inside_the_window(tmp_path):
    today = datetime.now(UTC).date()
    table = _table(
        tmp_path, {"d": pa.array([today, today - timedelta(days=1), today - timedelta(days=30)], pa.date32())}
    )
    session = session_without_source(
        "rolling",
        destination=table,
        columns=[SourceColumn("d", "date", pa.date32())],
        cron="0 * * * *",
        cron_timezone="UTC",
        rolling_column="d",
        rolling_window_days=7,
    )
    result = session.result(
        source_row_count=2,
        source_row_count_method="read snapshot",
        rolling_cutoff=(today - timedelta(days=7)).isoformat(),
    )
    checks, destination_rows = evaluate_checks(session, result)
    assert destination_rows == 2
    assert all(c.passed for c in checks), checks


def test_primary_key_duplicates_and_nulls():
    assert check_primary_key(["id"], pa.table({"id": [1, 2, 3]})).passed
    dup = check_primary_key(["id", "k"], pa.table({"id": [1, 1, 2], "k": ["x", "x", "x"]}))
    assert not dup.passed and dup.metadata["duplicate_keys"] == 1
    assert dup.metadata["rows_with_duplicate_keys"] == 2
    assert "id=1, k=x (2x)" in dup.metadata["sample_duplicates"]
    nulls = check_primary_key(["id"], pa.table({"id": pa.array([1, None], pa.int64())}))
    assert not nulls.passed and nulls.metadata["null_key_rows"] == 1
    assert check_primary_key([], None).passed


def test_freshness_against_cron():
    committed = datetime.now(UTC)
    assert check_freshness("*/5 * * * *", "UTC", committed).passed
    later = committed + timedelta(hours=1)
    stale = check_freshness("*/5 * * * *", "UTC", committed, now=later)
    assert not stale.passed and stale.severity == "WARN"
    assert check_freshness("0 3 * * *", "Europe/Amsterdam", committed, now=later).passed
    assert not check_freshness("0 3 * * *", "UTC", None).passed
    # A load an hour later that read the source and found nothing new: current as of that read.
    read_now = check_freshness("*/5 * * * *", "UTC", committed, source_read_at=later, now=later)
    assert read_now.passed and read_now.metadata["source_read_without_changes"] == later.isoformat(
        timespec="seconds"
    )


def test_schema_drift_by_name_and_type(tmp_path):
    table = _table(tmp_path, {"id": pa.array([1], pa.int32()), "a": ["x"]})
    stored = table.stored_schema()
    same = [SourceColumn("id", "integer", pa.int32()), SourceColumn("a", "text", pa.string())]
    assert check_schema_drift(same, stored).passed
    renamed = check_schema_drift([same[0], SourceColumn("b", "text", pa.string())], stored)
    assert not renamed.passed
    assert renamed.metadata["source_only_columns"] == "b" and renamed.metadata["delta_only_columns"] == "a"
    retyped = check_schema_drift([SourceColumn("id", "text", pa.string()), same[1]], stored)
    assert (
        not retyped.passed and "id: int32 in Delta, string in the source" in retyped.metadata["type_changes"]
    )


def test_single_fixed_width_keys_are_checked_by_sorting_with_the_same_answers():
    from datetime import date

    ints = pa.table(
        {"id": pa.chunked_array([pa.array([5, 1, 3], pa.int32()), pa.array([3, None, 5, 5], pa.int32())])}
    )
    by_sort = check_primary_key(["id"], ints)
    assert not by_sort.passed
    assert (by_sort.metadata["duplicate_keys"], by_sort.metadata["rows_with_duplicate_keys"]) == (2, 5)
    assert by_sort.metadata["null_key_rows"] == 1
    assert by_sort.metadata["sample_duplicates"] == "id=3 (2x); id=5 (3x)"
    days = pa.table({"d": pa.array([date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 1)], pa.date32())})
    assert check_primary_key(["d"], days).metadata["sample_duplicates"] == "d=2024-01-01 (2x)"
    stamps = pa.table(
        {
            "t": pa.array(
                [datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 2, tzinfo=UTC)],
                pa.timestamp("us", "UTC"),
            )
        }
    )
    assert check_primary_key(["t"], stamps).passed
    big = pa.table({"id": pa.array([2**63 - 1, -(2**63), 0], pa.int64())})
    assert check_primary_key(["id"], big).passed


def test_each_check_description_says_what_the_ui_shows_beside_it() -> None:
    """The UI prints "blocking"/"non-blocking" beside the description: they must agree, and the
    description says the severity of a failure (a non-blocking check read "… ERROR." — issue 19)."""
    from dataloader_contract.result import CHECK_SPECS

    for spec in CHECK_SPECS:
        said = "blocking" if spec.blocking else "non-blocking"
        assert f", {said}" in spec.description, spec
        assert ("non-blocking" in spec.description) != spec.blocking, spec
        assert "severity ERROR" in spec.description or "severity WARN" in spec.description, spec
