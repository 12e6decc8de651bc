"""Lifecycle bugs found by trying DataLoader as a new user and by fault injection (issue 9, items 5-6).

Each test reproduces one report against real PostgreSQL, Delta and a Dagster instance.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import psycopg
from dagster import (
    DagsterEventType,
    DagsterRunStatus,
    build_run_status_sensor_context,
    build_sensor_context,
)
from dagster._core.test_utils import create_run_for_test
from defs_support import (
    add_control,
    execute_request,
    materialize_by_hand,
    request_keys,
    row,
    set_row,
    source_table,
    tick,
    tick_and_run,
    with_pipes_client,
)

from control_db import queries
from control_db.lifecycle import begin_attempt, record_outcome
from control_db.local_runs import process_start
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadFailure, failed_result
from dataloader_defs.defs.loader import LocalPipesClient
from dataloader_defs.defs.run_tags import attempt_tag
from dataloader_defs.defs.sensors.failed_monitor import failed_monitor
from dataloader_defs.defs.sensors.reconcile_monitor import reconcile_monitor
from dataloader_defs.defs.sensors.run_status import load_run_failure_sensor
from dataloader_defs.lake import open_table
from dataloader_defs.retry_rules import classify
from pipes_workers.load import run_load
from pipes_workers.local_load import load_control_key


def _tick(instance, control_db):
    return tick(instance, control_db)


def _small_table(source_url: str, name: str) -> None:
    source_table(
        source_url, name, "id integer PRIMARY KEY, v text", f"INSERT INTO {name} VALUES (1, 'a'), (2, 'b')"
    )


def _fail_starting_run(instance, control_db, tags: dict[str, str], message: str) -> str:
    """A load run that fails while starting (before its step ran), seen by the run-failure sensor."""
    run = create_run_for_test(
        instance, job_name="dataloader_load_job", status=DagsterRunStatus.STARTING, tags=tags
    )
    instance.report_run_failed(instance.get_run_by_id(run.run_id), message=message)
    (record,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="load_run_failure_sensor",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        resources={"control_db": control_db},
    ).for_run_failure()
    load_run_failure_sensor(context)
    return run.run_id


def test_queued_row_whose_run_died_while_starting_is_requeued_without_a_retry(
    control_conn, source, instance, control_db, resources, lake_root
):
    """Ctrl-C while a sensor-launched run was starting left the row Queued for good (the row still held
    the previous run's id); then such a row was failed, using a retry, though its load never began
    (issue 19: under load every run Dagster could not dequeue in time was a 'failed' load)."""
    _small_table(source, "ctrl_c")
    add_control(control_conn, "f.ctrl_c")
    set_row(control_conn, "f.ctrl_c", last_run_id="the-previous-run", last_status="Succeeded")
    (request,) = _tick(instance, control_db).run_requests
    history_id = queries.history_rows(control_conn, "f.ctrl_c")[-1].id
    run_id = _fail_starting_run(instance, control_db, request.tags, "interrupted (SIGINT)")

    requeued = row(control_conn, "f.ctrl_c")
    assert (requeued.last_status, requeued.retry_count, requeued.manual_review) == (None, 0, False)
    assert requeued.last_status_message == (
        f"requeued (no retry used): Dagster run {run_id} failed before the load started: interrupted (SIGINT)"
    )
    attempt = queries.history_row(control_conn, history_id)
    assert (attempt.error_code, attempt.load_start_time, attempt.retry_decision) == (
        "not_started",
        None,
        "retry",
    )
    assert attempt.run_id == run_id  # the message names the run: so does the attempt (issue 19)
    assert queries.failed_retryable(control_conn) == []  # nothing for the failed monitor

    # The next tick queues it again, and that run loads it once.
    request, result = tick_and_run(instance, resources)
    assert result.success and request_keys(request) == ["f.ctrl_c"]
    loaded = row(control_conn, "f.ctrl_c")
    assert (loaded.last_status, loaded.retry_count) == ("Succeeded", 0)
    assert open_table(str(lake_root), "bronze/test/ctrl_c").to_pyarrow_table().num_rows == 2


def test_a_row_whose_runs_never_start_fails_after_the_requeue_limit(
    control_conn, source, instance, control_db, monkeypatch
):
    """Requeued, not forever: a run that can never start (a broken code location) still surfaces."""
    monkeypatch.setenv("DATALOADER_UNSTARTED_REQUEUES", "2")
    add_control(control_conn, "f.never_starts")
    for attempt in range(3):
        (request,) = _tick(instance, control_db).run_requests
        _fail_starting_run(instance, control_db, request.tags, "could not dequeue (DEADLINE_EXCEEDED)")
        expected = None if attempt < 2 else "Failed"
        assert row(control_conn, "f.never_starts").last_status == expected, attempt
    failed = row(control_conn, "f.never_starts")
    assert (failed.last_error_kind, failed.last_error_code, failed.retry_count) == (
        "transient",
        "run_failed",
        0,
    )
    assert failed.last_status_message.endswith("(2 attempts in a row ended before the load started)")


def test_reconcile_requeues_a_queued_row_whose_run_is_gone_in_one_pass(
    control_conn, source, instance, control_db, monkeypatch
):
    monkeypatch.setenv("DATALOADER_RECONCILE_QUEUED_GRACE_S", "0")
    add_control(control_conn, "f.never_created")
    add_control(control_conn, "f.finished")
    add_control(control_conn, "f.waiting")
    (request,) = _tick(instance, control_db).run_requests  # one run for the three; never created
    attempts = {key: queries.history_rows(control_conn, key)[-1].id for key in request_keys(request)}
    finished = create_run_for_test(
        instance,
        job_name="x",
        status=DagsterRunStatus.FAILURE,
        tags={attempt_tag(attempts["f.finished"]): "f.finished"},
    )
    create_run_for_test(
        instance,
        job_name="x",
        status=DagsterRunStatus.NOT_STARTED,
        tags={attempt_tag(attempts["f.waiting"]): "f.waiting"},
    )
    control_conn.execute(
        "UPDATE dataloader.table_control SET status_changed_at = now() - interval '1 minute'"
    )

    reconcile_monitor(build_sensor_context(instance=instance, resources={"control_db": control_db}))

    never_created = row(control_conn, "f.never_created")
    assert (never_created.last_status, never_created.retry_count) == (None, 0)  # back in the queue
    assert never_created.last_status_message.startswith(
        f"requeued (no retry used): no run was created for attempt {attempts['f.never_created']}"
    )
    lost = row(control_conn, "f.finished")
    assert lost.last_status is None and finished.run_id not in (lost.last_run_id or "")
    assert lost.last_status_message == (
        f"requeued (no retry used): the run queued for attempt {attempts['f.finished']} ended FAILURE "
        "without starting the load"
    )
    assert queries.history_rows(control_conn, "f.finished")[-1].run_id == finished.run_id
    assert row(control_conn, "f.waiting").last_status == "Queued"  # its run is still queued
    assert queries.failed_retryable(control_conn) == []
    (again,) = _tick(instance, control_db).run_requests  # the next tick queues both again
    assert request_keys(again) == ["f.finished", "f.never_created"]


def test_hand_load_of_a_queued_row_takes_it_over_and_the_queued_run_ends_quietly(
    control_conn, control_db_url, source, instance, control_db, resources, lake_root
):
    """`dataloader load X` a second after the sensor queued X used to fail the queued attempt and leave a
    red run next to a Succeeded row."""
    _small_table(source, "taken")
    add_control(control_conn, "f.taken", source_table="taken", primary_keys=["id"])
    (request,) = _tick(instance, control_db).run_requests

    by_hand = load_control_key(control_db_url, "f.taken", str(lake_root), log=lambda _m: None)
    assert by_hand.succeeded and by_hand.rows_read == 2

    queued_run = execute_request(instance, resources, request)
    assert queued_run.success
    assert queued_run.get_asset_materialization_events() == []  # it loaded nothing
    (attempt,) = queries.history_rows(control_conn, "f.taken")
    assert request.tags[attempt_tag(attempt.id)] == "f.taken"
    assert attempt.load_status == "Succeeded" and attempt.run_id.startswith("local-")
    assert attempt.load_queued_time is not None
    assert row(control_conn, "f.taken").last_status == "Succeeded"


def test_failed_monitor_asks_again_when_the_analysis_run_died(control_conn, source, instance, control_db):
    """The analysis run's key could not be reused: a cancelled analysis left the row Failed for good."""
    add_control(control_conn, "f.retry")
    queued = queries.queue_by_hand(control_conn, "f.retry")
    queries.mark_in_progress(control_conn, "f.retry", run_id="r1", history_id=queued.history_id)
    queries.mark_failed(control_conn, "f.retry", message="connection reset", kind="transient", code="08006")
    context = build_sensor_context(instance=instance, resources={"control_db": control_db})
    (first,) = failed_monitor(context).run_requests
    create_run_for_test(
        instance, job_name="dataloader_retry_analysis", status=DagsterRunStatus.NOT_STARTED, tags=first.tags
    )
    assert failed_monitor(context).run_requests == []  # its analysis is still queued

    (run,) = instance.get_runs()
    instance.report_run_canceled(run, message="cancelled while queued")
    (second,) = failed_monitor(context).run_requests
    assert second.run_key != first.run_key


class CuttingPipesClient(LocalPipesClient):
    """The subprocess client, but it cuts the asset's control-database connections after the worker ran
    (as `pg_terminate_backend` on `application_name='dataloader-dagster-asset'` did in the field)."""

    def __init__(self, control_url: str) -> None:
        super().__init__()
        self._control_url = control_url

    def run(self, **kwargs):
        invocation = super().run(**kwargs)
        with psycopg.connect(self._control_url, autocommit=True) as conn:  # this test's database only
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'dataloader-dagster-asset' AND datname = current_database()"
            )
        return invocation


def test_cut_control_connection_after_the_commit_still_records_success(
    control_conn, control_db_url, source, instance, resources, lake_root
):
    _small_table(source, "cut")
    add_control(control_conn, "f.cut", source_table="cut", primary_keys=["id"])
    result = materialize_by_hand(
        instance, with_pipes_client(resources, CuttingPipesClient(control_db_url)), "f.cut"
    )
    assert result.success
    loaded = row(control_conn, "f.cut")
    assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 2


def test_reconcile_leaves_a_running_dataloader_load_alone(
    control_conn, control_db_url, source, instance, control_db
):
    add_control(control_conn, "f.cli")
    attempt = begin_attempt(control_db_url, "f.cli", run_id="local-host-123-abcd", history_id=None)
    assert not hasattr(attempt, "reason")
    reconcile_monitor(build_sensor_context(instance=instance, resources={"control_db": control_db}))
    assert row(control_conn, "f.cli").last_status == "In Progress"


def test_reconcile_fails_a_dataloader_load_whose_process_is_gone(
    control_conn, control_db_url, source, instance, control_db
):
    """Before: every `local-…` run was skipped, so a load whose process ended stayed In Progress."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = process_start(process.pid)
    process.kill()
    process.wait()
    add_control(control_conn, "f.gone")
    dead = f"local-{socket.gethostname()}-{process.pid}-{start}-0123abcd"
    attempt = begin_attempt(control_db_url, "f.gone", run_id=dead, history_id=None)
    assert not hasattr(attempt, "reason")

    reconcile_monitor(build_sensor_context(instance=instance, resources={"control_db": control_db}))

    gone = row(control_conn, "f.gone")
    assert (gone.last_status, gone.last_error_kind, gone.last_error_code) == (
        "Failed",
        "transient",
        "run_lost",
    )
    assert classify(gone.last_error_kind, gone.last_error_code).retry


def test_a_commit_whose_run_died_is_recorded_succeeded_by_the_next_load(
    control_conn, control_db_url, source, lake_root
):
    """A step killed after the Delta commit left a Failed history row for a load that went through."""
    _small_table(source, "killed")
    add_control(control_conn, "f.killed", source_table="killed", primary_keys=["id"])
    first = begin_attempt(control_db_url, "f.killed", run_id="run-killed", history_id=None)
    request = LoadRequest.from_control_row(
        first.row, first.source, lake_root=str(lake_root), run_id="run-killed"
    )
    run_load(request)  # committed ... and then the step process died: the failure sensor records it
    died = LoadFailure(kind="transient", code="run_failed", message="step process killed")
    record_outcome(control_db_url, first, failed_result("f.killed", "full", died))
    assert queries.history_rows(control_conn, "f.killed")[0].load_status == "Failed"

    control_conn.execute("UPDATE dataloader.table_control SET last_status = NULL")  # the retry
    second = load_control_key(control_db_url, "f.killed", str(lake_root), log=lambda _m: None)
    assert second.committed_by_run == "run-killed"
    killed, retried = queries.history_rows(control_conn, "f.killed")
    assert killed.load_status == "Succeeded" and "corrected by the next load" in killed.error_message
    assert retried.load_status == "Succeeded"


def test_monitors_record_a_kind_not_a_text_prefix(control_conn, source, instance, control_db, monkeypatch):
    from dataloader_defs.defs.sensors.longqueued_monitor import longqueued_monitor

    monkeypatch.setenv("DATALOADER_LONGQUEUED_THRESHOLD_S", "0")
    monkeypatch.setenv("DATALOADER_UNSTARTED_REQUEUES", "0")  # fail at once: the kind is what is asserted
    add_control(control_conn, "f.stuck")
    queries.queue_ready_tables(control_conn, limit=1)
    control_conn.execute(
        "UPDATE dataloader.table_control SET status_changed_at = now() - %s", (timedelta(hours=2),)
    )
    longqueued_monitor(build_sensor_context(instance=instance, resources={"control_db": control_db}))
    stuck = row(control_conn, "f.stuck")
    assert (stuck.last_error_kind, stuck.last_error_code) == ("transient", "queued_too_long")
    assert not stuck.last_status_message.startswith("TransientLoadError")
    assert classify(stuck.last_error_kind, stuck.last_error_code).retry
