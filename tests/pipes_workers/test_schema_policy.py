"""schema_policy on PostgreSQL and MariaDB sources: evolve adds a new column and widens int -> bigint
keeping the old rows; freeze refuses any column change naming the column; discard_new leaves a new
column out and the schema-drift check reports it; an incompatible type change is refused naming the
column and both types; a widening of a table over DATALOADER_WIDEN_REWRITE_MAX_MB is refused, and
load_full widens it."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from loadtest_support import SourceDB, after_success, killed_worker

from dataloader_contract.errors import ConfigurationError, SchemaConflictError
from dataloader_contract.request import LoadRequest, table_uri
from pipes_workers.delta_settings import WIDEN_REWRITE_ENV
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load

BASE = datetime(2026, 1, 5, 8, tzinfo=UTC)


def _items_table(source: SourceDB) -> str:
    name = f"it_{uuid.uuid4().hex[:8]}"
    stamp = "timestamptz" if source.db_type == "postgresql" else "datetime(6)"
    source.execute(
        f"CREATE TABLE {source.quote(name)} (id bigint PRIMARY KEY, qty integer, note varchar(20), updated_at {stamp})"
    )
    return name


def _insert(source: SourceDB, table: str, rows: list[tuple[int, int, str]], *, hours: int = 0) -> None:
    for key, qty, note in rows:
        stamp = source.ts(BASE + timedelta(hours=hours, seconds=key))
        source.execute(
            f"INSERT INTO {source.quote(table)} (id, qty, note, updated_at) VALUES (%s, %s, %s, %s)",
            (key, qty, note, stamp),
        )


def _first_load(source: SourceDB, lake_root: Path, **fields: Any) -> tuple[str, LoadRequest]:
    table = _items_table(source)
    _insert(source, table, [(1, 10, "a"), (2, 20, "b")])
    request = source.request(table, "incremental", lake_root, **fields)
    return table, after_success(request, run_load(request))


def _delta(request: LoadRequest) -> pa.Table:
    return DeltaSession(table_uri(request.lake_root, request.destination_table)).read_arrow().sort_by("id")


def _alter(source: SourceDB, table: str, column: str, new_type: str) -> None:
    if source.db_type == "postgresql":
        source.execute(f"ALTER TABLE {source.quote(table)} ALTER COLUMN {column} TYPE {new_type}")
    else:
        source.execute(f"ALTER TABLE {source.quote(table)} MODIFY {column} {new_type}")


def test_freeze_refuses_an_added_column_while_evolve_adds_it(source: SourceDB, lake_root: Path) -> None:
    table, request = _first_load(source, lake_root, schema_policy="freeze")
    source.execute(f"ALTER TABLE {source.quote(table)} ADD COLUMN extra text")
    _insert(source, table, [(3, 30, "c")], hours=1)
    with pytest.raises(
        ConfigurationError, match=r"schema_policy freeze: column 'extra' was added in the source"
    ):
        run_load(request)
    assert _delta(request).column_names == ["id", "qty", "note", "updated_at"]

    evolved = dataclasses.replace(request, schema_policy="evolve")
    run_load(evolved)
    stored = _delta(request)
    assert "extra" in stored.column_names
    assert stored.column("id").to_pylist() == [1, 2, 3]


def test_freeze_refuses_a_type_change_and_a_removed_column(pg_source: SourceDB, lake_root: Path) -> None:
    table, request = _first_load(pg_source, lake_root, schema_policy="freeze")
    _alter(pg_source, table, "qty", "bigint")
    pg_source.execute(f"ALTER TABLE {pg_source.quote(table)} DROP COLUMN note")
    with pytest.raises(ConfigurationError) as refused:
        run_load(request)
    message = str(refused.value)
    assert "column 'note' is gone from the source" in message
    assert "column 'qty' changed type from int32 in the Delta table to int64 in the source" in message
    assert refused.value.kind == "configuration"


def test_discard_new_leaves_a_new_column_out_and_the_drift_check_reports_it(
    source: SourceDB, lake_root: Path
) -> None:
    table, request = _first_load(source, lake_root, schema_policy="discard_new")
    source.execute(f"ALTER TABLE {source.quote(table)} ADD COLUMN extra text")
    source.execute(f"UPDATE {source.quote(table)} SET extra = 'secret'")
    _insert(source, table, [(3, 30, "c")], hours=1)
    result = run_load(request)
    stored = _delta(request)
    assert stored.column_names == ["id", "qty", "note", "updated_at"]
    assert stored.column("id").to_pylist() == [1, 2, 3]
    drift = next(c for c in result.checks if c.name == "schema_drift")
    assert not drift.passed
    assert drift.metadata["source_only_columns"] == "extra"
    assert drift.metadata["discarded_columns"] == "extra"


def test_int_to_bigint_widening_under_evolve_keeps_the_old_rows(source: SourceDB, lake_root: Path) -> None:
    table, request = _first_load(source, lake_root)
    _alter(source, table, "qty", "bigint")
    _alter(source, table, "note", "varchar(200)")  # a longer varchar: text stays text
    _insert(source, table, [(3, 5_000_000_000, "c" * 100)], hours=1)
    result = run_load(request)
    stored = _delta(request)
    assert stored.schema.field("qty").type == pa.int64()
    assert stored.column("qty").to_pylist() == [10, 20, 5_000_000_000]
    assert stored.column("note").to_pylist() == ["a", "b", "c" * 100]
    assert result.watermark_after is not None and result.watermark_after > (request.incremental_value or "")
    history = DeltaSession(table_uri(request.lake_root, request.destination_table)).require().history(3)
    assert [c.get("dataloader.operation") for c in history][1] == "widen_types"
    passed = {c.name: c.passed for c in result.checks}
    assert passed["schema_drift"] and passed["primary_key_unique"] and passed["row_count_reconciliation"]
    again = after_success(request, result)
    assert run_load(again).rows_read == 0  # the next load reads past the watermark: nothing new


def test_incompatible_type_change_is_refused_naming_the_column_and_both_types(
    source: SourceDB, lake_root: Path
) -> None:
    table, request = _first_load(source, lake_root)
    _alter(source, table, "qty", "varchar(20)")
    with pytest.raises(
        SchemaConflictError, match=r"column 'qty' changed type from int32 in the Delta table to string"
    ):
        run_load(request)
    assert _delta(request).schema.field("qty").type == pa.int32()


def test_a_widening_next_to_a_refused_change_rewrites_nothing(source: SourceDB, lake_root: Path) -> None:
    table, request = _first_load(source, lake_root)
    version = DeltaSession(table_uri(request.lake_root, request.destination_table)).require().version()
    source.execute(f"UPDATE {source.quote(table)} SET note = '7'")
    _alter(source, table, "qty", "bigint")  # a widening ...
    if source.db_type == "postgresql":  # ... next to a change that is refused
        source.execute(
            f"ALTER TABLE {source.quote(table)} ALTER COLUMN note TYPE integer USING note::integer"
        )
    else:
        _alter(source, table, "note", "integer")
    with pytest.raises(
        SchemaConflictError, match=r"column 'note' changed type from string in the Delta table to int32"
    ):
        run_load(request)
    session = DeltaSession(table_uri(request.lake_root, request.destination_table))
    assert session.require().version() == version
    assert _delta(request).schema.field("qty").type == pa.int32()


def test_a_kill_after_the_widening_loses_and_repeats_nothing(pg_source: SourceDB, lake_root: Path) -> None:
    table, request = _first_load(pg_source, lake_root)
    _alter(pg_source, table, "qty", "bigint")
    _insert(pg_source, table, [(3, 5_000_000_000, "c")], hours=1)
    killed_worker(request, "widen")
    widened = _delta(request)
    assert widened.schema.field("qty").type == pa.int64()
    assert widened.column("qty").to_pylist() == [10, 20]  # widened, the load's rows not yet written
    run_load(request)
    assert _delta(request).column("qty").to_pylist() == [10, 20, 5_000_000_000]


def test_a_widening_too_large_to_rewrite_is_refused_until_load_full(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, request = _first_load(pg_source, lake_root)
    session = DeltaSession(table_uri(request.lake_root, request.destination_table))
    version = session.require().version()
    _alter(pg_source, table, "qty", "bigint")
    _insert(pg_source, table, [(3, 5_000_000_000, "c")], hours=1)
    monkeypatch.setenv(WIDEN_REWRITE_ENV, "0")  # 0: every widening waits for a load_full
    with pytest.raises(ConfigurationError) as refused:
        run_load(request)
    message = str(refused.value)
    assert refused.value.kind == "configuration"
    assert message.startswith(
        f"test.{table}: widening the column type(s) of {session.uri} (qty int32 -> int64)"
    )
    assert re.search(
        r"Delta table \([\d,]+ bytes; DATALOADER_WIDEN_REWRITE_MAX_MB=0\): refused, nothing written;", message
    )
    assert f"SET load_full = true WHERE control_key = 'test.{table}'" in message
    assert message.endswith("to rewrite it with the wider type(s), or raise DATALOADER_WIDEN_REWRITE_MAX_MB")
    unchanged = DeltaSession(table_uri(request.lake_root, request.destination_table))
    assert unchanged.require().version() == version
    assert _delta(request).schema.field("qty").type == pa.int32()

    reloaded = run_load(dataclasses.replace(request, load_full=True))  # the setting is still 0
    assert reloaded.error is None
    stored = _delta(request)
    assert stored.schema.field("qty").type == pa.int64()
    assert stored.column("qty").to_pylist() == [10, 20, 5_000_000_000]


def test_a_history_table_too_large_to_widen_is_widened_by_its_load_full(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An scd2 table's load_full merges new versions (it keeps the history) and widens on the way,
    as the refusal advises, whatever the size setting."""
    table, request = _first_load(pg_source, lake_root, history_mode="scd2")
    _alter(pg_source, table, "qty", "bigint")
    monkeypatch.setenv(WIDEN_REWRITE_ENV, "0")
    with pytest.raises(ConfigurationError, match=r"\(qty int32 -> int64\) rewrites the whole") as refused:
        run_load(request)
    assert "run load_full (UPDATE dataloader.table_control SET load_full = true" in str(refused.value)
    versions_before = _delta(request).num_rows
    reloaded = run_load(dataclasses.replace(request, load_full=True))
    assert reloaded.error is None
    stored = _delta(request)
    assert stored.schema.field("qty").type == pa.int64()
    assert stored.num_rows == versions_before  # unchanged rows: no new version, history kept


def test_widening_a_partitioned_table_keeps_its_partitions(pg_source: SourceDB, lake_root: Path) -> None:
    table, request = _first_load(pg_source, lake_root, partition_by=("month(updated_at)",))
    _alter(pg_source, table, "qty", "bigint")
    _insert(pg_source, table, [(3, 5_000_000_000, "c")], hours=24 * 40)  # next month
    run_load(request)
    session = DeltaSession(table_uri(request.lake_root, request.destination_table))
    assert session.require().metadata().partition_columns == ["_part_month_updated_at"]
    stored = _delta(request)
    assert stored.schema.field("qty").type == pa.int64()
    assert stored.column("_part_month_updated_at").to_pylist() == ["2026-01", "2026-01", "2026-02"]
