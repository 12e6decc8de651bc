"""landing_table_monitor: one bounded batch of keys per run, and a queued or running landing run means busy."""

from __future__ import annotations

import psycopg
import pytest
from dagster import (
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
)
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin, RemoteJobOrigin, RemoteRepositoryOrigin
from dagster._core.test_utils import create_run_for_test
from defs_support import add_control

from dataloader_defs.defs.jobs import landing_table_git_job
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.landing_table_monitor import landing_table_monitor


def _landed(conn: psycopg.Connection, count: int) -> list[str]:
    """`count` control rows with one succeeded load each and no staging model yet."""
    keys = [f"t.landed_{n:03d}" for n in range(count)]
    for key in keys:
        add_control(conn, key)
    conn.execute(
        "INSERT INTO dataloader.historical_metadata (control_key, config_id, load_status, load_end_time) "
        "SELECT control_key, config_id, 'Succeeded', now() FROM dataloader.table_control"
    )
    return keys


# A queued run must name where its job lives (the daemon launches it from there).
ORIGIN = RemoteJobOrigin(
    RemoteRepositoryOrigin(
        GrpcServerCodeLocationOrigin(host="127.0.0.1", port=4266, location_name="dataloader_defs"),
        "__repository__",
    ),
    landing_table_git_job.name,
)


def _landing_run(instance: DagsterInstance, status: DagsterRunStatus) -> str:
    """A landing_table_git_job run in `status`; QUEUED the way the coordinator does it (an enqueued event)."""
    created = status if status != DagsterRunStatus.QUEUED else DagsterRunStatus.NOT_STARTED
    run = create_run_for_test(
        instance, job_name=landing_table_git_job.name, status=created, remote_job_origin=ORIGIN
    )
    if status == DagsterRunStatus.QUEUED:
        event = DagsterEvent(DagsterEventType.RUN_ENQUEUED.value, job_name=landing_table_git_job.name)
        instance.report_dagster_event(event, run_id=run.run_id)
    found = instance.get_run_by_id(run.run_id)
    assert found is not None and found.status == status
    return run.run_id


def _tick(instance: DagsterInstance, control_db: ControlDatabase) -> SensorResult:
    result = landing_table_monitor(
        build_sensor_context(instance=instance, resources={"control_db": control_db})
    )
    assert isinstance(result, SensorResult)
    return result


def _keys(result: SensorResult) -> list[list[str]]:
    return [
        r.run_config["ops"]["write_staging_models"]["config"]["control_keys"] for r in result.run_requests
    ]


@pytest.mark.parametrize(
    "status", [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTED]
)
def test_a_queued_or_running_landing_run_means_busy(
    control_conn, source, instance: DagsterInstance, control_db, status: DagsterRunStatus
) -> None:
    _landed(control_conn, 2)
    waiting = _landing_run(instance, status)

    result = _tick(instance, control_db)

    assert result.run_requests == []
    assert result.skip_reason is not None and waiting in result.skip_reason.skip_message


def test_a_finished_landing_run_does_not_block(control_conn, source, instance, control_db) -> None:
    keys = _landed(control_conn, 2)
    _landing_run(instance, DagsterRunStatus.FAILURE)
    assert _keys(_tick(instance, control_db)) == [keys]


def test_pending_keys_go_in_one_bounded_batch(
    control_conn, source, instance, control_db, monkeypatch
) -> None:
    monkeypatch.setenv("DATALOADER_LANDING_BATCH", "10")
    keys = _landed(control_conn, 25)

    result = _tick(instance, control_db)

    assert _keys(result) == [keys[:10]]  # oldest rows first; the rest wait for the next run
    (request,) = result.run_requests
    assert request.tags["dataloader/landing_tables"] == "10"
