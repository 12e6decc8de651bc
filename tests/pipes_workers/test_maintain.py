"""Maintenance: compaction (z-ordered by primary key for MERGEd tables) and vacuum keep the data and
the exactly-once state, cut the file count, never vacuum below Delta's safe minimum, and never run
on a row a load holds (`dataloader maintain` takes the row's maintenance claim, which no load
overlaps, and leaves its load status alone)."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from deltalake import DeltaTable
from loadtest_support import SourceDB, after_success, assert_same_rows, make_rows
from test_local_load import add_control_row

from control_db import queries
from dataloader_contract.request import LoadRequest, table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load
from pipes_workers.maintain import (
    RETENTION_ENV,
    MaintenanceRequest,
    main,
    maintain_control_keys,
    maintain_table,
    register,
)


def _many_loads(source: SourceDB, lake_root: Path, loads: int, **fields: object) -> tuple[str, LoadRequest]:
    """A table after `loads` loads that each add two rows (a MERGE skips the files outside the new
    keys' range, so each load adds a file), and for a MERGEd table one last load changing an old row."""
    table = source.events_table()
    source.insert(table, make_rows(range(1, 41)))
    request = source.request(table, "incremental", lake_root, **fields)
    request = after_success(request, run_load(request))
    for n in range(loads):
        stamp = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=n)
        source.insert(table, make_rows(range(41 + 2 * n, 43 + 2 * n), base=stamp))
        request = after_success(request, run_load(request))
    if request.load_strategy == "append_only":
        return table, request  # an appended table takes no changes
    stamp = datetime(2026, 1, 1, tzinfo=UTC)
    source.execute(
        f"UPDATE {source.quote(table)} SET amount = amount + 1, updated_at = %s WHERE id = 41",
        (source.ts(stamp),),
    )
    return table, after_success(request, run_load(request))


def _maintenance_request(request: LoadRequest) -> MaintenanceRequest:
    return MaintenanceRequest(
        control_key=request.control_key,
        destination_table=request.destination_table,
        lake_root=request.lake_root,
        load_strategy=request.load_strategy,
        primary_keys=request.primary_keys,
    )


def _short_retention(request: LoadRequest) -> None:
    """Let this table's own rule allow vacuuming files at once (the test cannot wait a week)."""
    uri = table_uri(request.lake_root, request.destination_table)
    DeltaTable(uri).alter.set_table_properties({"delta.deletedFileRetentionDuration": "interval 0 hours"})


def test_maintenance_compacts_vacuums_and_keeps_data_and_state(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, request = _many_loads(pg_source, lake_root, 12)
    uri = table_uri(request.lake_root, request.destination_table)
    state_before = DeltaSession(uri).state(request.control_key)
    _short_retention(request)
    monkeypatch.setenv(RETENTION_ENV, "0")

    result = maintain_table(_maintenance_request(request), log=lambda _m: None)
    assert result.files_before > result.files_after >= 1
    assert result.z_order_by == ("id",)  # a MERGEd table is clustered by its key
    assert result.files_removed > 0 and result.bytes_removed > 0 and result.retention_hours == 0
    assert_same_rows(pg_source, table, request)
    state_after = DeltaSession(uri).state(request.control_key)  # a fresh look after maintenance
    assert (state_after.txn_version, state_after.last_watermark) == (
        state_before.txn_version,
        state_before.last_watermark,
    )

    pg_source.insert(table, make_rows(range(100, 102), base=datetime(2026, 6, 1, tzinfo=UTC)))
    assert run_load(request).rows_read == 2  # the next load carries on from the same state
    assert_same_rows(pg_source, table, request)


def test_vacuum_never_goes_below_the_tables_safe_minimum(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, request = _many_loads(pg_source, lake_root, 3, load_strategy="append_only")
    monkeypatch.setenv(RETENTION_ENV, "0")
    result = maintain_table(_maintenance_request(request), log=lambda _m: None)
    assert result.retention_hours == 168  # the default delta.deletedFileRetentionDuration
    assert result.files_removed == 0 and result.z_order_by == ()  # appended: compacted, not clustered
    assert result.files_after < result.files_before
    assert_same_rows(pg_source, table, request)


def test_vacuum_removes_a_failed_writes_old_leftover_and_keeps_a_fresh_one(
    pg_source: SourceDB, lake_root: Path
) -> None:
    table, request = _many_loads(pg_source, lake_root, 1, load_strategy="append_only")
    root = Path(table_uri(request.lake_root, request.destination_table))
    committed = sorted(root.glob("*.parquet"))[0]
    old, fresh = root / "part-00001-leftover-old.parquet", root / "part-00001-leftover-fresh.parquet"
    for leftover in (old, fresh):  # what a write that failed before its commit leaves
        leftover.write_bytes(committed.read_bytes())
    month_ago = (datetime.now(UTC) - timedelta(days=30)).timestamp()
    os.utime(old, (month_ago, month_ago))
    result = maintain_table(_maintenance_request(request), log=lambda _m: None)
    assert result.retention_hours == 168 and result.files_removed == 1
    assert not old.exists() and fresh.exists()  # a file younger than the retention may be a write in progress
    assert_same_rows(pg_source, table, request)


def test_missing_table_is_skipped(lake_root: Path) -> None:
    request = MaintenanceRequest("k", "bronze/none", str(lake_root), "full")
    assert maintain_table(request, log=lambda _m: None).skipped == "no Delta table yet"


def test_maintain_holds_the_row_and_skips_busy_ones(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 5)))
    key = add_control_row(control_conn, pg_source, table)
    busy = add_control_row(control_conn, pg_source, pg_source.events_table(), last_status="Queued")
    control_conn.execute(
        "UPDATE dataloader.table_control SET last_status = 'Succeeded', last_status_message = 'loaded', "
        "last_run_id = 'run-7' WHERE control_key = %s",
        (key,),
    )
    row = queries.get_control_row(control_conn, key)
    assert row is not None
    run_load(
        LoadRequest.from_control_row(
            row,
            queries.get_source_config(control_conn, row.db_config_key),
            lake_root=str(lake_root),
            run_id="run-7",
        )
    )
    seen: list[tuple[str | None, str | None]] = []
    connections: list[int] = []  # the maintenance's own control connections open while it works

    def watch(message: str) -> None:  # what a load would find while maintenance runs
        current = queries.get_control_row(control_conn, key)
        if current is not None:
            seen.append((current.last_status, current.maintenance_owner))
        open_maintenance = control_conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'dataloader-maint%'"
        ).fetchone()
        connections.append(open_maintenance[0] if open_maintenance else -1)

    results = {
        r.control_key: r for r in maintain_control_keys(control_db_url, None, str(lake_root), log=watch)
    }
    # Held by a claim (owner: this process) while it ran, its load status untouched throughout.
    assert seen and all(status == "Succeeded" for status, _ in seen)
    assert any(owner is not None and owner.startswith("local-") for _, owner in seen)
    assert connections and set(connections) == {0}
    assert results[busy].skipped is not None and "Queued" in results[busy].skipped
    assert results[key].skipped is None and results[key].files_after == 1
    after = queries.get_control_row(control_conn, key)
    assert after is not None
    assert (after.last_status, after.last_status_message, after.last_run_id) == (
        "Succeeded",
        "loaded",
        "run-7",
    )
    assert after.last_maintenance_at is not None
    assert (after.maintenance_owner, after.maintenance_expires_at) == (None, None)
    # A row held by maintenance cannot be started by hand.
    claim = queries.claim_maintenance(control_conn, key, owner="t1", ttl=timedelta(hours=1))
    assert claim is not None
    assert queries.claim_maintenance(control_conn, key, owner="t2", ttl=timedelta(hours=1)) is None
    assert queries.queue_by_hand(control_conn, key) is None
    assert queries.release_maintenance(control_conn, claim, done=False)


def test_cli_needs_a_key_or_all(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", "postgresql://unused")
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", "/tmp/unused")
    assert main(parser.parse_args(["maintain"])) == 1
    assert "CONTROL_KEY or --all" in capsys.readouterr().err


def test_unknown_key_and_bad_claim_setting_are_configuration_errors(
    control_db_url: str, lake_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataloader_contract.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="no control row with control_key 'nope'"):
        maintain_control_keys(control_db_url, ["nope"], str(lake_root))
    monkeypatch.setenv("DATALOADER_MAINTENANCE_CLAIM_S", "soon")
    with pytest.raises(ConfigurationError, match="DATALOADER_MAINTENANCE_CLAIM_S"):
        maintain_control_keys(control_db_url, ["nope"], str(lake_root))
