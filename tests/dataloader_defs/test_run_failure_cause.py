"""The failure cause the run-failure sensor writes on a control row: step failures first, then errors a
run worker, launcher or monitor reported as engine events, then the run-failure event's own message."""

from __future__ import annotations

import sys

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    build_run_status_sensor_context,
    job,
    op,
)
from dagster._core.errors import DagsterInvalidSubsetError
from dagster._core.events import EngineEventData
from dagster._core.test_utils import create_run_for_test
from dagster._utils.error import serializable_error_info_from_exc_info
from defs_support import add_control, row, start_by_hand

from dataloader_defs.defs.run_tags import TAG_SOURCE
from dataloader_defs.defs.sensors.run_status import (
    DAGSTER_OUTSIDE_FAILURE,
    load_run_failure_sensor,
    run_failure_cause,
)

SUBSET_ERROR = "AssetKey(s) [['bronze', 'test', 'new_table']] were selected, but no AssetsDefinition objects supply these keys"


def _error_info(exc: BaseException):
    try:
        raise exc
    except BaseException:
        return serializable_error_info_from_exc_info(sys.exc_info())


def _sensor_on_failure(instance: DagsterInstance, run_id: str, control_db) -> None:
    (record,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="load_run_failure_sensor",
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"control_db": control_db},
    ).for_run_failure()
    load_run_failure_sensor(context)


def _started_load_run(instance: DagsterInstance, control_conn, key: str):
    add_control(control_conn, key)
    run = create_run_for_test(
        instance,
        job_name="dataloader_load_job",
        status=DagsterRunStatus.STARTED,
        tags={TAG_SOURCE: "test_pg"},
    )
    start_by_hand(control_conn, key, run.run_id)
    return run


def test_a_run_worker_that_could_not_load_the_job_names_the_error(control_conn, source, instance, control_db):
    """What a reused Celery child with stale definitions recorded: the cause sits in an engine event and
    the run is failed with Dagster's default message, which alone says nothing."""
    run = _started_load_run(instance, control_conn, "c.stale")
    instance.report_engine_event("Started process for run (pid: 42).", run)  # no error: not the cause
    instance.report_engine_event(
        "Could not load job definition.",
        run,
        EngineEventData.engine_error(_error_info(DagsterInvalidSubsetError(SUBSET_ERROR))),
    )
    instance.report_run_failed(instance.get_run_by_id(run.run_id))  # the default message

    _sensor_on_failure(instance, run.run_id, control_db)

    failed = row(control_conn, "c.stale")
    assert failed.last_status == "Failed" and failed.last_error_code == "run_failed"
    assert failed.last_status_message == (
        f"Dagster run {run.run_id} failed before the load recorded its outcome: Could not load job "
        f"definition.: dagster._core.errors.DagsterInvalidSubsetError: {SUBSET_ERROR}"
    )
    assert DAGSTER_OUTSIDE_FAILURE not in failed.last_status_message


def test_a_run_failed_by_the_monitoring_daemon_names_its_message(control_conn, source, instance, control_db):
    run = _started_load_run(instance, control_conn, "c.worker_gone")
    message = "Detected run worker status FAILED: Celery worker w1@host did not answer 3 checks in a row."
    instance.report_run_failed(instance.get_run_by_id(run.run_id), message=message)

    _sensor_on_failure(instance, run.run_id, control_db)

    assert row(control_conn, "c.worker_gone").last_status_message.endswith(f"outcome: {message}")


def test_a_step_failure_comes_before_engine_errors(instance):
    @op
    def breaks() -> None:
        raise ValueError("source table public.orders: permission denied")

    @job
    def failing_job() -> None:
        breaks()

    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    instance.report_engine_event(
        "Exception while attempting to terminate run.",
        run,
        EngineEventData.engine_error(_error_info(OSError("x"))),
    )
    cause = run_failure_cause(instance, run, "fallback")
    assert cause == "ValueError: source table public.orders: permission denied (failure reason STEP_FAILURE)"


def test_without_any_error_the_fallback_stands(instance):
    run = create_run_for_test(instance, job_name="dataloader_load_job", status=DagsterRunStatus.STARTED)
    instance.report_run_failed(run)
    assert run_failure_cause(instance, instance.get_run_by_id(run.run_id), "run failed") == "run failed"
