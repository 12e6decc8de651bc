"""Every sensor against seeded control rows and a real Dagster instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    build_run_status_sensor_context,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test
from defs_support import add_control, row, set_row, start_by_hand

from control_db import queries
from dataloader_defs.defs.assets import (
    TAG_CONTROL_KEY,
    TAG_HISTORY_ID,
    TAG_SOURCE,
    TAG_STRATEGY,
    control_keys,
)
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.failed_monitor import failed_monitor
from dataloader_defs.defs.sensors.landing_table_monitor import landing_table_monitor
from dataloader_defs.defs.sensors.longqueued_monitor import longqueued_monitor
from dataloader_defs.defs.sensors.longrunning_monitor import longrunning_monitor
from dataloader_defs.defs.sensors.master_sensor import master_sensor
from dataloader_defs.defs.sensors.reconcile_monitor import reconcile_monitor
from dataloader_defs.defs.sensors.run_status import load_run_canceled_sensor, load_run_failure_sensor
from dataloader_defs.defs.sensors.run_termination import terminate_run


def evaluate(sensor, instance: DagsterInstance, control_db: ControlDatabase) -> SensorResult:
    result = sensor(build_sensor_context(instance=instance, resources={"control_db": control_db}))
    assert isinstance(result, SensorResult)
    return result


def seed_states(conn: psycopg.Connection) -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    add_control(conn, "t.ready_null")
    add_control(conn, "t.ready_succeeded", last_status="Succeeded", next_load_date_time=datetime.now(UTC))
    add_control(conn, "t.not_due", next_load_date_time=future)
    add_control(conn, "t.inactive", is_active=False)
    add_control(conn, "t.failed", last_status="Failed")
    add_control(conn, "t.in_progress", last_status="In Progress")
    add_control(conn, "t.queued", last_status="Queued")


def test_master_sensor_queues_ready_rows_only(control_conn, source, instance, control_db):
    seed_states(control_conn)
    result = evaluate(master_sensor, instance, control_db)

    keys = sorted(r.partition_key for r in result.run_requests)
    assert keys == ["t.ready_null", "t.ready_succeeded"]
    for request in result.run_requests:
        history = queries.history_rows(control_conn, request.partition_key)[-1]
        assert request.run_key == f"{request.partition_key}:{history.id}"
        assert request.tags == {
            TAG_CONTROL_KEY: request.partition_key,
            TAG_SOURCE: "test_pg",
            TAG_STRATEGY: "full",
            TAG_HISTORY_ID: str(history.id),
        }
        assert row(control_conn, request.partition_key).last_status == "Queued"
    assert row(control_conn, "t.not_due").last_status is None
    assert row(control_conn, "t.failed").last_status == "Failed"
    assert row(control_conn, "t.in_progress").last_status == "In Progress"

    (partition_request,) = result.dynamic_partitions_requests
    assert partition_request.partitions_def_name == control_keys.name
    assert set(partition_request.partition_keys) == {
        "t.ready_null",
        "t.ready_succeeded",
        "t.not_due",
        "t.failed",
        "t.in_progress",
        "t.queued",
    }  # every active row, not the inactive one

    # A second tick queues nothing new: the rows are Queued now.
    instance.add_dynamic_partitions(control_keys.name, list(partition_request.partition_keys))
    again = evaluate(master_sensor, instance, control_db)
    assert again.run_requests == []
    assert not again.dynamic_partitions_requests


def test_master_sensor_batch_limit(control_conn, source, instance, control_db, monkeypatch):
    monkeypatch.setenv("DATALOADER_MASTER_BATCH", "2")
    for i in range(5):
        add_control(control_conn, f"t.batch{i}")
    assert len(evaluate(master_sensor, instance, control_db).run_requests) == 2
    assert len(evaluate(master_sensor, instance, control_db).run_requests) == 2
    assert len(evaluate(master_sensor, instance, control_db).run_requests) == 1


def test_master_sensor_one_backfill_per_source(control_conn, source, instance, control_db):
    backfill = {
        "load_strategy": "chunked_backfill",
        "chunk_column": "id",
        "chunk_size": 100,
        "incremental_column": "id",
        "primary_keys": ["id"],
    }
    add_control(control_conn, "t.backfill_a", **backfill)
    add_control(control_conn, "t.backfill_b", **backfill)
    add_control(control_conn, "t.plain")
    first = sorted(r.partition_key for r in evaluate(master_sensor, instance, control_db).run_requests)
    assert first in (["t.backfill_a", "t.plain"], ["t.backfill_b", "t.plain"])
    # While one backfill is Queued, the other waits.
    assert evaluate(master_sensor, instance, control_db).run_requests == []


def test_longqueued_monitor_fails_stuck_rows_and_cancels_waiting_runs(
    control_conn, source, instance, control_db, monkeypatch
):
    add_control(control_conn, "t.stuck")
    add_control(control_conn, "t.fresh")
    queries.queue_ready_tables(control_conn, limit=10)
    control_conn.execute(
        "UPDATE dataloader.table_control SET status_changed_at = now() - interval '2 hours' WHERE control_key = 't.stuck'"
    )
    waiting = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.NOT_STARTED,
        tags={TAG_CONTROL_KEY: "t.stuck"},
    )
    monkeypatch.setenv("DATALOADER_LONGQUEUED_THRESHOLD_S", "3600")

    evaluate(longqueued_monitor, instance, control_db)

    stuck = row(control_conn, "t.stuck")
    assert stuck.last_status == "Failed"
    assert "queued for more than 3600s" in stuck.last_status_message
    assert row(control_conn, "t.fresh").last_status == "Queued"
    assert instance.get_run_by_id(waiting.run_id).status == DagsterRunStatus.CANCELED
    assert queries.history_rows(control_conn, "t.stuck")[-1].load_status == "Failed"


def test_longrunning_monitor_terminates_run_and_fails_row(
    control_conn, source, instance, control_db, monkeypatch
):
    add_control(control_conn, "t.slow")
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.STARTED,
        tags={TAG_CONTROL_KEY: "t.slow"},
    )
    assert start_by_hand(control_conn, "t.slow", run.run_id) is not None
    monkeypatch.setenv("DATALOADER_LONGRUNNING_THRESHOLD_S", "0")

    evaluate(longrunning_monitor, instance, control_db)

    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
    slow = row(control_conn, "t.slow")
    assert slow.last_status == "Failed"
    assert f"run {run.run_id}" in slow.last_status_message


def test_longrunning_monitor_leaves_young_rows(control_conn, source, instance, control_db):
    add_control(control_conn, "t.young")
    start_by_hand(control_conn, "t.young", "r1")
    evaluate(longrunning_monitor, instance, control_db)
    assert row(control_conn, "t.young").last_status == "In Progress"


def test_failed_monitor_requests_retry_analysis_until_max_retries(control_conn, source, instance, control_db):
    add_control(control_conn, "t.retry_me", last_status="Failed", retry_count=1, max_retries=3)
    add_control(control_conn, "t.exhausted", last_status="Failed", retry_count=3, max_retries=3)
    add_control(control_conn, "t.reviewed", last_status="Failed", manual_review=True)
    set_row(control_conn, "t.retry_me", status_changed_at=datetime(2026, 1, 1, tzinfo=UTC))

    result = evaluate(failed_monitor, instance, control_db)

    (request,) = result.run_requests
    assert request.run_key == "retry:t.retry_me:1:2026-01-01T00:00:00+00:00"
    assert request.run_config == {"ops": {"analyse_failure": {"config": {"control_key": "t.retry_me"}}}}
    assert TAG_CONTROL_KEY not in request.tags  # the run-status sensors must ignore analysis runs


def test_landing_table_monitor_requests_job_for_landed_rows(control_conn, source, instance, control_db):
    add_control(control_conn, "t.landed")
    add_control(control_conn, "t.never_loaded")
    history_id = start_by_hand(control_conn, "t.landed", "r1")
    queries.mark_succeeded(
        control_conn,
        "t.landed",
        history_id=history_id,
        run_id="r1",
        rows_processed=1,
        watermark_before=None,
        watermark_after=None,
    )
    result = evaluate(landing_table_monitor, instance, control_db)
    (request,) = result.run_requests
    assert request.run_config == {"ops": {"write_staging_models": {"config": {"control_keys": ["t.landed"]}}}}

    queries.mark_staging_processed(control_conn, "t.landed")
    assert evaluate(landing_table_monitor, instance, control_db).run_requests == []


def _status_context(
    instance: DagsterInstance, run_id: str, event_type: DagsterEventType, name: str, control_db
):
    (record,) = instance.all_logs(run_id, of_type=event_type)
    return build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"control_db": control_db},
    )


def test_run_failure_sensor_fails_row_of_dead_run(control_conn, source, instance, control_db):
    add_control(control_conn, "t.dies")
    add_control(control_conn, "t.other")
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.STARTED,
        tags={TAG_CONTROL_KEY: "t.dies"},
    )
    start_by_hand(control_conn, "t.dies", run.run_id)
    start_by_hand(control_conn, "t.other", "another-run")
    instance.report_run_failed(instance.get_run_by_id(run.run_id), message="run worker killed (SIGKILL)")

    context = _status_context(
        instance, run.run_id, DagsterEventType.RUN_FAILURE, "load_run_failure_sensor", control_db
    ).for_run_failure()
    load_run_failure_sensor(context)

    dies = row(control_conn, "t.dies")
    assert dies.last_status == "Failed"
    assert "run worker killed" in dies.last_status_message
    assert row(control_conn, "t.other").last_status == "In Progress"
    assert queries.history_rows(control_conn, "t.dies")[-1].load_status == "Failed"


def test_run_canceled_sensor_fails_row_of_cancelled_queued_run(control_conn, source, instance, control_db):
    add_control(control_conn, "t.cancelled")
    (queued,) = queries.queue_ready_tables(control_conn, limit=1)
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.NOT_STARTED,
        tags={TAG_CONTROL_KEY: "t.cancelled", TAG_HISTORY_ID: str(queued.history_id)},
    )
    terminate_run(instance, run.run_id, "cancelled by a person")

    context = _status_context(
        instance, run.run_id, DagsterEventType.RUN_CANCELED, "load_run_canceled_sensor", control_db
    )
    load_run_canceled_sensor(context)

    cancelled = row(control_conn, "t.cancelled")
    assert cancelled.last_status == "Failed"
    assert "was cancelled" in cancelled.last_status_message


def test_reconcile_fails_rows_of_vanished_runs_and_closes_orphan_history(
    control_conn, source, instance, control_db
):
    add_control(control_conn, "t.vanished")
    add_control(control_conn, "t.alive")
    add_control(control_conn, "t.orphan")
    start_by_hand(control_conn, "t.vanished", "run-that-never-existed")
    alive = create_run_for_test(instance, job_name="dataloader_load_job", status=DagsterRunStatus.STARTED)
    start_by_hand(control_conn, "t.alive", alive.run_id)
    # An attempt left open while the row moved on (e.g. a crash between two statements), an hour ago.
    control_conn.execute(
        "INSERT INTO dataloader.historical_metadata (control_key, load_status, load_queued_time, created_at) "
        "VALUES ('t.orphan', 'Queued', now() - interval '1 hour', now() - interval '1 hour')"
    )

    evaluate(reconcile_monitor, instance, control_db)

    vanished = row(control_conn, "t.vanished")
    assert vanished.last_status == "Failed"
    assert "no longer exists" in vanished.last_status_message
    assert row(control_conn, "t.alive").last_status == "In Progress"
    (orphan,) = queries.history_rows(control_conn, "t.orphan")
    assert orphan.load_status == "Failed" and orphan.load_end_time is not None
    open_keys = {h.control_key for h in queries.open_history_rows(control_conn)}
    assert open_keys == {"t.alive"}


@pytest.mark.parametrize("name", ["DATALOADER_MASTER_BATCH", "DATALOADER_LONGQUEUED_THRESHOLD_S"])
def test_settings_reject_malformed_values(monkeypatch, name):
    from dataloader_defs.defs.settings import env_int

    monkeypatch.setenv(name, "ten")
    with pytest.raises(ValueError, match=name):
        env_int(name)
