"""The code location loads from the control table, and from its last snapshot when the database is down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DefaultSensorStatus, Definitions
from defs_support import add_control, row, source_table

from dataloader_defs.definitions import build_definitions

SENSORS = {
    "master_sensor",
    "control_table_sensor",
    "longqueued_monitor",
    "longrunning_monitor",
    "failed_monitor",
    "landing_table_monitor",
    "reconcile_monitor",
    "load_run_failure_sensor",
    "load_run_canceled_sensor",
    "maintenance_sensor",
}


def test_definitions_load_one_asset_per_active_row(
    control_conn, source, control_db_url, monkeypatch, tmp_path
):
    monkeypatch.setenv("DATALOADER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(tmp_path / "lake"))
    add_control(control_conn, "d.orders", primary_keys=["id"], cron="*/15 * * * *")
    add_control(control_conn, "d.customers")
    add_control(control_conn, "d.paused", is_active=False)

    defs = build_definitions(control_db_url)

    assert isinstance(defs, Definitions)
    repo = defs.get_repository_def()
    assert repo.has_job("dataloader_load_job") and repo.has_job("dataloader_retry_analysis")
    assert repo.has_job("landing_table_git_job")
    assert repo.has_job("dataloader_maintenance_job")
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == SENSORS
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["master_sensor"].minimum_interval_seconds == 60
    graph = repo.asset_graph
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"bronze/test/orders", "bronze/test/customers"}  # the paused row has no asset
    orders = graph.get(AssetKey(["bronze", "test", "orders"]))
    assert orders.group_name == "test_pg" and orders.kinds == {"delta", "postgresql"}
    assert orders.metadata["primary_keys"] == "id" and "public.orders" in orders.description
    assert orders.freshness_policy is not None
    checks = {(key.asset_key.path[-1], key.name) for key in graph.asset_check_keys}
    assert ("orders", "primary_key_unique") in checks and len(checks) == 8

    # The control database goes down: the location still loads, from the last snapshot.
    down = build_definitions("postgresql://postgres@127.0.0.1:1/none")
    assert {k.to_user_string() for k in down.get_repository_def().asset_graph.get_all_asset_keys()} == keys


def test_a_run_launched_by_hand_loads_in_the_run_process(
    control_conn, source, control_db_url, lake_root: Path, tmp_path: Path
):
    """`dagster asset materialize` executes the run a UI materialisation launches: its one step runs
    in the run's process (a step process would import Dagster and the code location again)."""
    source_table(
        source, "by_hand", "id integer PRIMARY KEY", "INSERT INTO by_hand SELECT generate_series(1, 7)"
    )
    add_control(control_conn, "d.by_hand", source_table="by_hand", primary_keys=["id"])
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DATALOADER_CONTROL_DB_URL": control_db_url,
        "DATALOADER_LAKE_ROOT": str(lake_root),
        "DATALOADER_STATE_DIR": str(tmp_path / "state"),
    }
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "--select", "bronze/test/by_hand"]
    done = subprocess.run(
        [*command, "-m", "dataloader_defs.definitions"], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr and "Multiprocess executor" not in done.stderr
    loaded = row(control_conn, "d.by_hand")
    assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 7


def test_definitions_load_without_any_snapshot(monkeypatch, tmp_path):
    monkeypatch.setenv("DATALOADER_STATE_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(tmp_path / "lake"))
    defs = build_definitions("postgresql://postgres@127.0.0.1:1/none")
    sensors = {s.name for s in defs.get_repository_def().sensor_defs}
    assert sensors == SENSORS - {"master_sensor"}


def test_control_table_sensor_refreshes_the_snapshot_when_rows_change(
    control_conn, source, control_db, instance, monkeypatch, tmp_path
):
    from dagster import build_sensor_context

    from dataloader_defs.control_snapshot import refresh, stored_snapshot
    from dataloader_defs.defs.sensors.control_table_sensor import build_control_table_sensor

    monkeypatch.setenv("DATALOADER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DATALOADER_DAGSTER_URL", "http://127.0.0.1:1")  # no webserver: reload not requested
    add_control(control_conn, "d.first")
    loaded = refresh(control_db.url)
    sensor = build_control_table_sensor(loaded)
    context = build_sensor_context(instance=instance, resources={"control_db": control_db})

    assert "unchanged" in sensor(context).skip_reason.skip_message
    add_control(control_conn, "d.second")
    changed = sensor(context).skip_reason.skip_message
    assert "1 -> 2 active row(s)" in changed and "reload not requested" in changed
    assert {r.control_key for r in stored_snapshot().rows} == {"d.first", "d.second"}
