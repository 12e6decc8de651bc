"""Every sensor against seeded control rows and a real Dagster instance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    SensorResult,
    build_run_status_sensor_context,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test
from defs_support import add_control, request_keys, row, set_row, start_by_hand, tick

from control_db import queries
from dataloader_contract.result import LoadResult
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.run_tags import TAG_SOURCE, attempt_tag
from dataloader_defs.defs.sensors.failed_monitor import failed_monitor
from dataloader_defs.defs.sensors.landing_table_monitor import landing_table_monitor
from dataloader_defs.defs.sensors.longqueued_monitor import longqueued_monitor
from dataloader_defs.defs.sensors.longrunning_monitor import longrunning_monitor
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
    result = tick(instance, control_db)

    (request,) = result.run_requests  # one source: one run for both ready tables
    assert request_keys(request) == ["t.ready_null", "t.ready_succeeded"]
    attempts = {key: queries.history_rows(control_conn, key)[-1].id for key in request_keys(request)}
    assert request.run_key == "load:" + ",".join(str(i) for i in sorted(attempts.values()))
    assert request.run_config == {"ops": {"dataloader_table_load": {"config": {"attempts": attempts}}}}
    assert {tuple(k.path) for k in request.asset_selection} == {
        ("bronze", "test", "ready_null"),
        ("bronze", "test", "ready_succeeded"),
    }
    assert request.tags[TAG_SOURCE] == "test_pg" and request.tags["dataloader/tables"] == "2"
    for key, history_id in attempts.items():
        assert request.tags[attempt_tag(history_id)] == key
        assert row(control_conn, key).last_status == "Queued"
    assert row(control_conn, "t.not_due").last_status is None
    assert row(control_conn, "t.failed").last_status == "Failed"
    assert row(control_conn, "t.in_progress").last_status == "In Progress"
    # A second tick queues nothing new: the rows are Queued now.
    assert tick(instance, control_db).run_requests == []


def test_master_sensor_batches_runs_per_source(control_conn, source, instance, control_db, monkeypatch):
    from defs_support import add_source

    add_source(control_conn, source, key="other_pg")
    monkeypatch.setenv("DATALOADER_MASTER_BATCH", "30")
    monkeypatch.setenv("DATALOADER_RUN_BATCH", "12")
    for i in range(25):
        add_control(control_conn, f"t.a{i:02}")
    for i in range(3):
        add_control(control_conn, f"t.b{i}", db_config_key="other_pg", destination_table=f"bronze/other/b{i}")
    requests = tick(instance, control_db).run_requests
    sizes = sorted((r.tags[TAG_SOURCE], len(request_keys(r))) for r in requests)
    assert sizes == [("other_pg", 3), ("test_pg", 1), ("test_pg", 12), ("test_pg", 12)]


def test_master_sensor_queues_only_rows_the_code_location_knows(control_conn, source, instance, control_db):
    from defs_support import table_defs

    add_control(control_conn, "t.known")
    _, sensor = table_defs(control_db.url)  # the code location as loaded before the next row came in
    add_control(control_conn, "t.inserted_later")
    result = sensor(build_sensor_context(instance=instance, resources={"control_db": control_db}))
    (request,) = result.run_requests
    assert request_keys(request) == ["t.known"]
    assert row(control_conn, "t.inserted_later").last_status is None  # waits for the reload


def test_master_sensor_batch_limit(control_conn, source, instance, control_db, monkeypatch):
    monkeypatch.setenv("DATALOADER_MASTER_BATCH", "2")
    for i in range(5):
        add_control(control_conn, f"t.batch{i}")
    counts = [sum(len(request_keys(r)) for r in tick(instance, control_db).run_requests) for _ in range(3)]
    assert counts == [2, 2, 1]


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
    requests = tick(instance, control_db).run_requests
    first = sorted(k for r in requests for k in request_keys(r))
    assert first in (["t.backfill_a", "t.plain"], ["t.backfill_b", "t.plain"])
    assert len(requests) == 2  # the backfill runs alone
    # While one backfill is Queued, the other waits.
    assert tick(instance, control_db).run_requests == []


def test_longqueued_monitor_requeues_stuck_rows_without_a_retry_and_cancels_waiting_runs(
    control_conn, source, instance, control_db, monkeypatch
):
    """Queued for hours never started its load: back to the queue, no retry used, not Failed (issue 19);
    only DATALOADER_UNSTARTED_REQUEUES such attempts in a row fail it (transient, queued_too_long)."""
    add_control(control_conn, "t.stuck")
    add_control(control_conn, "t.fresh")
    monkeypatch.setenv("DATALOADER_LONGQUEUED_THRESHOLD_S", "3600")
    monkeypatch.setenv("DATALOADER_UNSTARTED_REQUEUES", "2")

    def stuck_for_hours() -> DagsterRun:
        queries.queue_ready_tables(control_conn, limit=10)
        control_conn.execute(
            "UPDATE dataloader.table_control SET status_changed_at = now() - interval '2 hours' "
            "WHERE control_key = 't.stuck'"
        )
        attempt = queries.history_rows(control_conn, "t.stuck")[-1]
        return create_run_for_test(
            instance,
            job_name="dataloader_load_job",
            status=DagsterRunStatus.NOT_STARTED,
            tags={attempt_tag(attempt.id): "t.stuck"},
        )

    for _ in range(2):
        waiting = stuck_for_hours()
        evaluate(longqueued_monitor, instance, control_db)
        stuck = row(control_conn, "t.stuck")
        assert stuck.last_status is None and stuck.retry_count == 0 and not stuck.manual_review
        assert stuck.last_status_message.startswith("requeued (no retry used): queued for more than 3600s")
        assert instance.get_run_by_id(waiting.run_id).status == DagsterRunStatus.CANCELED
        attempt = queries.history_rows(control_conn, "t.stuck")[-1]
        assert (attempt.error_code, attempt.run_id) == ("not_started", waiting.run_id)
    assert row(control_conn, "t.fresh").last_status == "Queued"

    waiting = stuck_for_hours()  # the third in a row: the limit is reached
    evaluate(longqueued_monitor, instance, control_db)
    stuck = row(control_conn, "t.stuck")
    assert (stuck.last_status, stuck.last_error_kind, stuck.last_error_code) == (
        "Failed",
        "transient",
        "queued_too_long",
    )
    assert "2 attempts in a row ended before the load started" in stuck.last_status_message
    assert queries.history_rows(control_conn, "t.stuck")[-1].load_status == "Failed"


def test_longrunning_monitor_terminates_run_and_fails_row(
    control_conn, source, instance, control_db, monkeypatch
):
    add_control(control_conn, "t.slow")
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.STARTED,
        tags={TAG_SOURCE: "test_pg"},
    )
    assert start_by_hand(control_conn, "t.slow", run.run_id) is not None
    monkeypatch.setenv("DATALOADER_LONGRUNNING_THRESHOLD_S", "0")

    evaluate(longrunning_monitor, instance, control_db)

    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
    slow = row(control_conn, "t.slow")
    assert slow.last_status == "Failed" and slow.last_error_code == "running_too_long"
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
    assert request.run_key == "retry:t.retry_me:1:2026-01-01T00:00:00+00:00:0"
    assert request.run_config == {"ops": {"analyse_failure": {"config": {"control_key": "t.retry_me"}}}}
    assert not request_keys(request)  # the run-status sensors must ignore analysis runs


def test_failed_monitor_waits_while_the_failed_rows_run_is_still_alive(
    control_conn, source, instance, control_db
):
    """The long-running monitor fails a row before its run has stopped: no retry beside that run."""
    alive = create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.CANCELING)
    add_control(
        control_conn,
        "t.stopping",
        last_status="Failed",
        retry_count=0,
        last_run_id=alive.run_id,
        last_error_kind="transient",
        last_error_code="running_too_long",
    )
    assert not evaluate(failed_monitor, instance, control_db).run_requests
    instance.report_run_canceled(instance.get_run_by_id(alive.run_id))
    (request,) = evaluate(failed_monitor, instance, control_db).run_requests
    assert request.tags["dataloader/retry_for"] == "t.stopping"


def test_failed_monitor_retries_a_row_its_own_run_failed_though_that_run_shows_started(
    control_conn, source, instance, control_db
):
    """A run recorded its table's failure (the worker was killed), then its process died with its code
    server: Dagster keeps the run STARTED forever. The row is retried anyway (seen in the faults-under-
    load test: the row stayed Failed for 30 minutes)."""
    stale = create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED)
    add_control(
        control_conn,
        "t.worker_killed",
        last_status="Failed",
        retry_count=0,
        last_run_id=stale.run_id,
        last_error_kind="transient",
        last_error_code="worker_died",
    )
    (request,) = evaluate(failed_monitor, instance, control_db).run_requests
    assert request.tags["dataloader/retry_for"] == "t.worker_killed"


def test_landing_table_monitor_requests_job_for_landed_rows(control_conn, source, instance, control_db):
    add_control(control_conn, "t.landed")
    add_control(control_conn, "t.never_loaded")
    history_id = start_by_hand(control_conn, "t.landed", "r1")
    queries.mark_succeeded(
        control_conn,
        "t.landed",
        history_id=history_id,
        run_id="r1",
        result=LoadResult(
            control_key="t.landed",
            strategy="incremental",
            rows_read=1,
            watermark_before=None,
            watermark_after=None,
        ),
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
        tags={TAG_SOURCE: "test_pg"},
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
    assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE  # a load had started


@pytest.mark.parametrize("requeued_by", ["the failure sensor", "an earlier pass"])
def test_a_run_that_failed_before_any_load_started_is_requeued_and_shown_cancelled(
    control_conn, source, instance, control_db, requeued_by
):
    """Dagster's run monitoring fails a run that did not start in time; nothing was loaded, so the
    tables go back to their queue and the run is reported cancelled: Dagster then shows neither the
    assets nor their checks as failed (it derives both from a FAILURE run). Also when the reconcile
    pass or the long-queued monitor had put the table back before the failure sensor saw the run."""
    add_control(control_conn, "t.slow_start")
    (queued,) = queries.queue_ready_tables(control_conn, limit=1)
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.STARTING,
        tags={attempt_tag(queued.history_id): "t.slow_start"},
    )
    if requeued_by == "an earlier pass":
        message = f"requeued (no retry used): Dagster run {run.run_id} failed before the load started: late"
        assert queries.requeue_unstarted(
            control_conn, "t.slow_start", history_id=queued.history_id, message=message, run_id=run.run_id
        )
    instance.report_run_failed(run, message="Run timed out due to taking longer than 180 seconds to start.")

    context = _status_context(
        instance, run.run_id, DagsterEventType.RUN_FAILURE, "load_run_failure_sensor", control_db
    ).for_run_failure()
    load_run_failure_sensor(context)

    requeued = row(control_conn, "t.slow_start")
    assert (requeued.last_status, requeued.retry_count) == (None, 0)
    assert requeued.last_status_message.startswith(
        f"requeued (no retry used): Dagster run {run.run_id} failed before the load started"
    )
    after = instance.get_run_by_id(run.run_id)
    assert after.status == DagsterRunStatus.CANCELED
    (cancelled,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_CANCELED)
    assert cancelled.dagster_event.message.startswith("DataLoader: this run ended before any load started")

    # The cancel it reports fires the cancel sensor: the attempt is closed, so nothing changes.
    load_run_canceled_sensor(
        _status_context(
            instance, run.run_id, DagsterEventType.RUN_CANCELED, "load_run_canceled_sensor", control_db
        )
    )
    assert row(control_conn, "t.slow_start").last_status_message == requeued.last_status_message


def test_run_canceled_sensor_requeues_row_of_cancelled_queued_run(control_conn, source, instance, control_db):
    add_control(control_conn, "t.cancelled")
    (queued,) = queries.queue_ready_tables(control_conn, limit=1)
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.NOT_STARTED,
        tags={attempt_tag(queued.history_id): "t.cancelled"},
    )
    terminate_run(instance, run.run_id, "cancelled by a person")

    context = _status_context(
        instance, run.run_id, DagsterEventType.RUN_CANCELED, "load_run_canceled_sensor", control_db
    )
    load_run_canceled_sensor(context)

    cancelled = row(control_conn, "t.cancelled")
    assert (cancelled.last_status, cancelled.retry_count) == (None, 0)  # never started: back in its queue
    assert cancelled.last_status_message == (
        f"requeued (no retry used): Dagster run {run.run_id} was cancelled before the load started"
    )


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
