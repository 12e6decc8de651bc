"""The code location builds from the control-table state in Dagster's defs state storage: never from
the control database or a local file at load; a run rebuilds the version it was launched with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import AssetKey, DefaultSensorStatus, Definitions
from defs_support import add_control, row, source_table

from dataloader_defs import state
from dataloader_defs.definitions import load_definitions

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
    "table_state_monitor",
    "circuit_monitor",
}
DAGSTER_YAML = """
defs_state_storage:
  module: dataloader_defs.state_storage
  class: InstanceDefsStateStorage
telemetry:
  enabled: false
"""


def _dagster_home(tmp_path: Path, control_db_url: str, lake_root: Path) -> tuple[Path, dict[str, str]]:
    """A DAGSTER_HOME whose instance keeps the defs state in its storage, and the environment of a
    process that uses it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    env = {**os.environ, "DAGSTER_HOME": str(home), "DATALOADER_CONTROL_DB_URL": control_db_url}
    return home, {**env, "DATALOADER_LAKE_ROOT": str(lake_root)}


def _asset_keys(defs: Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.get_repository_def().asset_graph.get_all_asset_keys()}


def test_definitions_load_one_asset_per_row_and_a_paused_one_says_so(
    control_conn, source, control_db_url, instance, monkeypatch, tmp_path
):
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(tmp_path / "lake"))
    add_control(control_conn, "d.orders", primary_keys=["id"], cron="*/15 * * * *")
    add_control(control_conn, "d.customers")
    add_control(control_conn, "d.paused", is_active=False)
    state.refresh_state(instance, control_db_url)

    # The control database is unreachable at load: nothing reads it there.
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    defs = load_definitions(instance)

    assert isinstance(defs, Definitions)
    repo = defs.get_repository_def()
    assert repo.has_job("dataloader_retry_analysis")
    assert repo.has_job("landing_table_git_job")
    assert repo.has_job("dataloader_maintenance_job")
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == SENSORS
    assert all(s.default_status == DefaultSensorStatus.RUNNING for s in sensors.values())
    assert sensors["master_sensor"].minimum_interval_seconds == 60
    # The master sensor launches the tables' assets (Dagster's implicit asset job), not a job of its own.
    targeted = sensors["master_sensor"].asset_selection.resolve(repo.asset_graph)
    everything = {"bronze/test/orders", "bronze/test/customers", "bronze/test/paused"}
    assert {k.to_user_string() for k in targeted} == everything  # it queues only active rows
    graph = repo.asset_graph
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == everything  # a paused row keeps its asset (downstream assets depend on it) ...
    paused = graph.get(AssetKey(["bronze", "test", "paused"]))
    assert paused.description.startswith("Paused (is_active = false): not loaded on its schedule")
    assert paused.tags["dataloader/state"] == "paused" and paused.metadata["state"].startswith("Paused")
    assert paused.freshness_policy is None  # ... with no schedule to miss
    orders = graph.get(AssetKey(["bronze", "test", "orders"]))
    assert orders.group_name == "test_pg" and orders.kinds == {"delta", "postgresql"}
    assert orders.metadata["primary_keys"] == "id" and "public.orders" in orders.description
    assert orders.freshness_policy is not None and "dataloader/state" not in orders.tags
    checks = {(key.asset_key.path[-1], key.name) for key in graph.asset_check_keys}
    assert ("orders", "primary_key_unique") in checks and len(checks) == 12


def test_a_run_rebuilds_the_state_version_it_was_launched_with(
    control_conn, source, control_db_url, instance, monkeypatch, tmp_path
):
    """A later state version (a row added) does not change what a run of the earlier one builds."""
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
    from dagster._core.definitions.repository_definition import RepositoryLoadData
    from dagster._core.storage.defs_state.base import set_defs_state_storage
    from dagster_shared.serdes.objects.models.defs_state_info import DefsStateInfo

    from dataloader_defs.control_tables_component import STATE_KEY
    from dataloader_defs.definitions import defs as lazy_defs

    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(tmp_path / "lake"))
    add_control(control_conn, "d.first")
    first = state.refresh_state(instance, control_db_url)
    add_control(control_conn, "d.second")
    second = state.refresh_state(instance, control_db_url)
    assert first != second and state.latest_version(instance) == second
    assert _asset_keys(load_definitions(instance)) == {"bronze/test/first", "bronze/test/second"}

    pinned = RepositoryLoadData(defs_state_info=DefsStateInfo.add_version(None, STATE_KEY, first))
    with set_defs_state_storage(instance.defs_state_storage):
        DefinitionsLoadContext.set(
            DefinitionsLoadContext(load_type=DefinitionsLoadType.RECONSTRUCTION, repository_load_data=pinned)
        )
        try:
            assert _asset_keys(lazy_defs()) == {"bronze/test/first"}
        finally:
            DefinitionsLoadContext.set(None)  # type: ignore[arg-type]


def test_a_run_launched_by_hand_loads_in_the_run_process(
    control_conn, source, control_db_url, lake_root: Path, tmp_path: Path
):
    """`dagster asset materialize` executes the run a UI materialisation launches: its one step runs
    in the run's process (a step process would import Dagster and the code location again)."""
    source_table(
        source, "by_hand", "id integer PRIMARY KEY", "INSERT INTO by_hand SELECT generate_series(1, 7)"
    )
    add_control(control_conn, "d.by_hand", source_table="by_hand", primary_keys=["id"])
    home, env = _dagster_home(tmp_path, control_db_url, lake_root)
    refreshed = subprocess.run(
        [sys.executable, "-m", "dataloader_defs.state", "refresh"], env=env, capture_output=True, text=True
    )
    assert refreshed.returncode == 0 and "1 row(s)" in refreshed.stdout, refreshed.stderr[-2000:]
    dagster = Path(sys.executable).with_name("dagster")
    command = [str(dagster), "asset", "materialize", "--select", "bronze/test/by_hand"]
    done = subprocess.run(
        [*command, "-m", "dataloader_defs.definitions"], env=env, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert "RUN_SUCCESS" in done.stderr and "Multiprocess executor" not in done.stderr
    loaded = row(control_conn, "d.by_hand")
    assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 7


def test_definitions_load_without_any_state(instance, monkeypatch, tmp_path):
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", "postgresql://postgres@127.0.0.1:1/none")
    defs = load_definitions(instance)
    sensors = {s.name for s in defs.get_repository_def().sensor_defs}
    assert sensors == SENSORS - {"master_sensor"}
    assert _asset_keys(defs) == set()


def test_control_table_sensor_writes_a_new_state_version_when_rows_change(
    control_conn, source, control_db, instance, monkeypatch, tmp_path
):
    from dagster import build_sensor_context

    from dataloader_defs.defs.sensors.control_table_sensor import build_control_table_sensor

    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(tmp_path / "lake"))
    add_control(control_conn, "d.first")
    first = state.refresh_state(instance, control_db.url)
    sensor = build_control_table_sensor(state.stored_snapshot(instance, first))
    context = build_sensor_context(instance=instance, resources={"control_db": control_db})

    assert "unchanged" in sensor(context).skip_reason.skip_message
    assert state.latest_version(instance) == first
    add_control(control_conn, "d.second")
    changed = sensor(context).skip_reason.skip_message
    assert "(1 row(s))" in changed and "written (2 row(s))" in changed
    assert "not served by a code server" in changed  # no code server behind this context
    second = state.latest_version(instance)
    assert second != first
    assert {r.control_key for r in state.stored_snapshot(instance).rows} == {"d.first", "d.second"}
    # Until the definitions are rebuilt, a tick asks for the reload again without a new version.
    again = sensor(context).skip_reason.skip_message
    assert "already matches" in again and state.latest_version(instance) == second


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_code_server_reloads_with_new_state_when_its_sensor_sees_new_rows(
    control_conn, source, control_db_url, lake_root, tmp_path
):
    """The whole path a deployment takes: a `dagster code-server start` process serves the location
    from the stored state; its control_table_sensor, evaluated by the server as the daemon has it
    evaluated, writes a new version and reloads the server, which then serves the new row's asset."""
    import time

    from dagster import DagsterInstance
    from dagster._core.remote_origin import GrpcServerCodeLocationOrigin

    from dataloader_defs.control_tables_component import STATE_KEY

    home, env = _dagster_home(tmp_path, control_db_url, lake_root)
    add_control(control_conn, "d.first")
    instance = DagsterInstance.from_config(str(home))
    state.refresh_state(instance, control_db_url)
    port = _free_port()
    dagster = Path(sys.executable).with_name("dagster")
    server = subprocess.Popen(
        [str(dagster), "code-server", "start", "-m", "dataloader_defs.definitions", "-h", "127.0.0.1",
         "-p", str(port), "--location-name", "dataloader_defs"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port, location_name="dataloader_defs")
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                origin.create_client().ping("x")
                break
            except Exception:
                assert server.poll() is None and time.monotonic() < deadline, "the code server did not start"
                time.sleep(0.5)

        def served_assets() -> tuple[str, set[str]]:
            with origin.create_location(instance) as location:
                repo = next(iter(location.get_repositories().values()))
                keys = {node.asset_key.to_user_string() for node in repo.get_asset_node_snaps()}
                # The version the server built from, which every run it launches carries.
                assert location.get_defs_state_info().get_version(STATE_KEY) == state.latest_version(instance)
                return location.server_id, keys

        first_server, keys = served_assets()
        assert keys == {"bronze/test/first"}
        add_control(control_conn, "d.second")
        with origin.create_location(instance) as location:
            repo = next(iter(location.get_repositories().values()))
            result = location.get_sensor_execution_data(
                instance, repo.handle, "control_table_sensor", None, None, None, None, None
            )
        assert "reloaded with the new state" in result.skip_message, result.skip_message
        second_server, keys = served_assets()
        assert keys == {"bronze/test/first", "bronze/test/second"} and second_server != first_server
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        instance.dispose()


def test_a_backfill_that_handed_over_says_so_on_its_asset(control_conn, source) -> None:
    """The demo's backfill table turned incremental with nothing telling so (issue 19)."""
    from control_db import queries
    from dataloader_defs.control_snapshot import TableRow
    from dataloader_defs.defs.assets import asset_spec

    add_control(
        control_conn,
        "d.ledger",
        load_strategy="chunked_backfill",
        incremental_column="id",
        primary_keys=["id"],
        chunk_column="id",
        chunk_size=10,
    )
    add_control(
        control_conn, "d.plain", load_strategy="incremental", incremental_column="id", primary_keys=["id"]
    )

    def spec(key: str):
        (source_row,) = [r for r in queries.asset_sources(control_conn)[1] if r.control_key == key]
        return asset_spec(TableRow(**source_row.__dict__))

    assert spec("d.ledger").description.endswith("loaded chunked_backfill.")
    control_conn.execute(
        "UPDATE dataloader.table_control SET load_strategy = 'incremental' WHERE control_key = 'd.ledger'"
    )
    handed_over = spec("d.ledger")
    assert handed_over.description.endswith("loaded incremental since its chunked_backfill finished.")
    assert handed_over.metadata["backfill"] == "chunked_backfill on id: done, handed over to incremental"
    assert "backfill" not in spec("d.plain").metadata


def test_a_history_table_says_so_on_its_asset(control_conn, source) -> None:
    from control_db import queries
    from dataloader_defs.control_snapshot import Snapshot, TableRow
    from dataloader_defs.defs.assets import asset_spec

    history = {"load_strategy": "incremental", "incremental_column": "id", "primary_keys": ["id"]}
    add_control(control_conn, "d.kept", **history, history_mode="scd2")
    add_control(control_conn, "d.plain", **history)
    fingerprint, rows = queries.asset_sources(control_conn)
    snapshot = Snapshot.from_json(
        Snapshot(fingerprint, tuple(TableRow(**r.__dict__) for r in rows)).to_json()
    )
    specs = {r.control_key: asset_spec(r) for r in snapshot.rows}
    assert specs["d.kept"].metadata["history"].startswith("scd2: every version kept")
    assert "history" not in specs["d.plain"].metadata
    control_conn.execute(
        "UPDATE dataloader.table_control SET history_mode = 'scd2' WHERE control_key = 'd.plain'"
    )
    assert queries.asset_fingerprint(control_conn) != fingerprint  # the snapshot is rebuilt on a change
