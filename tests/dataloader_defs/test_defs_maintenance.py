"""maintenance_sensor picks tables with enough loads since their last maintenance; the maintenance job
compacts and vacuums them through the Pipes maintenance worker while holding their control rows."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test
from defs_support import add_control, row, set_row, source_table

from control_db import queries
from dataloader_contract.request import LoadRequest, table_uri
from dataloader_defs.defs.loader import LocalWorkers, TableLoader
from dataloader_defs.defs.maintenance_job import dataloader_maintenance_job
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings
from dataloader_defs.defs.sensors.maintenance_sensor import maintenance_sensor
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load


def _succeeded_loads(conn: psycopg.Connection, key: str, count: int) -> None:
    for _ in range(count):
        conn.execute(
            "INSERT INTO dataloader.historical_metadata (control_key, load_status, load_end_time) "
            "VALUES (%s, 'Succeeded', now())",
            (key,),
        )


def _evaluate(instance: DagsterInstance, control_db: ControlDatabase) -> SensorResult:
    result = maintenance_sensor(build_sensor_context(instance=instance, resources={"control_db": control_db}))
    assert isinstance(result, SensorResult)
    return result


def test_sensor_requests_tables_with_enough_loads(
    control_conn, source, instance, control_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATALOADER_MAINTENANCE_AFTER_LOADS", "3")
    for key in ("t.due", "t.few", "t.busy", "t.done"):
        add_control(control_conn, key, last_status="Succeeded")
    set_row(control_conn, "t.busy", last_status="In Progress")
    _succeeded_loads(control_conn, "t.due", 3)
    _succeeded_loads(control_conn, "t.few", 2)
    _succeeded_loads(control_conn, "t.busy", 5)
    _succeeded_loads(control_conn, "t.done", 5)
    set_row(control_conn, "t.done", last_maintenance_at="infinity")

    result = _evaluate(instance, control_db)
    (request,) = result.run_requests
    assert request.run_config["ops"]["maintain_tables"]["config"]["control_keys"] == ["t.due"]

    running = create_run_for_test(
        instance, job_name=dataloader_maintenance_job.name, status=DagsterRunStatus.STARTED
    )
    skipped = _evaluate(instance, control_db)
    assert not skipped.run_requests and running.run_id in str(skipped.skip_reason)
    instance.report_run_canceled(running)

    monkeypatch.setenv("DATALOADER_MAINTENANCE_AFTER_LOADS", "10")
    assert _evaluate(instance, control_db).skip_reason is not None


def test_job_compacts_through_pipes_and_puts_the_row_back(
    control_conn, source, instance, control_db, lake_root: Path
) -> None:
    source_table(source, "events", "id bigint PRIMARY KEY, note text")
    add_control(
        control_conn, "t.events", load_strategy="append_only", incremental_column="id", primary_keys=["id"]
    )
    config = queries.get_source_config(control_conn, "test_pg")
    watermark = None
    for n in range(4):  # four appends: four files
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("INSERT INTO public.events VALUES (%s, 'x'), (%s, 'y')", (2 * n + 1, 2 * n + 2))
        set_row(control_conn, "t.events", incremental_value=watermark)
        request = LoadRequest.from_control_row(
            row(control_conn, "t.events"), config, lake_root=str(lake_root), run_id="r"
        )
        watermark = run_load(request).watermark_after
    set_row(control_conn, "t.events", last_status="Succeeded", last_status_message="loaded")

    settings = DataloaderSettings(lake_root=str(lake_root))
    resources = {
        "control_db": control_db,
        "settings": settings,
        "loader": TableLoader(control_db=control_db, settings=settings, workers=LocalWorkers()),
    }
    result = dataloader_maintenance_job.execute_in_process(
        run_config={"ops": {"maintain_tables": {"config": {"control_keys": ["t.events"]}}}},
        resources=resources,
        instance=instance,
    )
    assert result.success
    report = result.output_for_node("maintain_tables")["t.events"]
    assert (report["files_before"], report["files_after"]) == (4, 1)
    after = row(control_conn, "t.events")
    assert (after.last_status, after.last_status_message) == ("Succeeded", "loaded")
    assert after.last_maintenance_at is not None
    assert (after.maintenance_owner, after.maintenance_expires_at) == (None, None)  # claim released
    table = DeltaSession(table_uri(lake_root, "bronze/test/events")).read_arrow()
    assert sorted(table.column("id").to_pylist()) == list(range(1, 9))


def test_sensor_releases_the_claims_of_finished_runs(control_conn, source, instance, control_db) -> None:
    from datetime import timedelta

    from control_db.maintenance_lifecycle import run_owner

    for key in ("t.finished", "t.running"):
        add_control(control_conn, key, last_status="Succeeded")
    finished = create_run_for_test(
        instance, job_name=dataloader_maintenance_job.name, status=DagsterRunStatus.FAILURE
    )
    running = create_run_for_test(instance, job_name="other_job", status=DagsterRunStatus.STARTED)
    for key, run in (("t.finished", finished), ("t.running", running)):
        claim = queries.claim_maintenance(
            control_conn, key, owner=run_owner(run.run_id), ttl=timedelta(hours=1)
        )
        assert claim is not None
    _evaluate(instance, control_db)
    assert row(control_conn, "t.finished").maintenance_owner is None  # loads may go on
    assert row(control_conn, "t.running").maintenance_owner == run_owner(running.run_id)
