"""DataloaderCeleryRunLauncher with real Celery workers (RabbitMQ, Redis) and a PostgreSQL instance: a run
whose worker host was SIGKILLed is detected and failed naming the worker; a terminated run stops on its
worker and ends CANCELED (so the cancel sensor fails its table); one that ignores SIGINT is killed."""

from __future__ import annotations

import logging
from pathlib import Path

from celery_support import (  # noqa: F401 - the two fixtures
    celery_deployment_fixture,
    dagster_pg_url_fixture,
    instance_of,
    launch_sleep_run,
    pid_alive,
    wait_for,
    wait_started,
)
from dagster import DagsterEventType, DagsterRunStatus, build_run_status_sensor_context
from dagster._core.launcher import WorkerStatus
from dagster._daemon.monitoring.run_monitoring import monitor_started_run
from defs_support import add_control, row, start_by_hand

from control_db import queries
from dataloader_defs.defs.run_tags import attempt_tag
from dataloader_defs.defs.sensors.run_status import load_run_canceled_sensor, load_run_failure_sensor
from dataloader_defs.defs.sensors.run_termination import terminate_run
from dataloader_defs.deploy.celery_launcher import DataloaderCeleryRunLauncher


def _finished(instance, run_id: str):
    run = instance.get_run_by_id(run_id)
    return run if run.is_finished else None


def _status_context(instance, run_id: str, event_type: DagsterEventType, name: str, control_db):
    (record,) = instance.all_logs(run_id, of_type=event_type)
    return build_run_status_sensor_context(
        sensor_name=name,
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run_id),
        resources={"control_db": control_db},
    )


def test_a_run_whose_worker_host_was_killed_is_failed_naming_the_worker(
    celery_deployment, tmp_path: Path, control_conn, source, control_db
):
    node = celery_deployment.start_worker("host1")
    with instance_of(celery_deployment) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, DataloaderCeleryRunLauncher)
        run = launch_sleep_run(instance, tmp_path / "run")
        wait_started(instance, run.run_id, tmp_path / "run")
        add_control(control_conn, "c.on_host1")
        start_by_hand(control_conn, "c.on_host1", run.run_id)  # the table the run was loading
        run = instance.get_run_by_id(run.run_id)
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING  # its worker answers

        celery_deployment.kill_worker_host()
        assert (
            launcher.celery.AsyncResult(run.tags["dagster-celery/task_id"]).state == "STARTED"
        )  # what fooled it

        # Two missed checks are a busy worker, not a dead one; the third fails the run's worker.
        first, second, third = (launcher.check_run_worker_health(run) for _ in range(3))
        assert (first.status, second.status) == (WorkerStatus.RUNNING, WorkerStatus.RUNNING)
        assert first.msg == f"Celery worker {node} (pid {_pid(tmp_path)}) did not answer (1 of 3)"
        assert third.status == WorkerStatus.FAILED
        assert third.msg.startswith(
            f"Celery worker {node} (pid {_pid(tmp_path)}) did not answer 3 checks in a row"
        )

        # Dagster's run monitoring (what the daemon runs every poll interval) then fails the run ...
        for _ in range(3):
            monitor_started_run(
                instance, None, instance.get_run_record_by_id(run.run_id), logging.getLogger("test")
            )
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
        # ... and the run-failure sensor fails its table (transient: retried), naming the worker.
        context = _status_context(
            instance, run.run_id, DagsterEventType.RUN_FAILURE, "load_run_failure_sensor", control_db
        ).for_run_failure()
        load_run_failure_sensor(context)
        failed = row(control_conn, "c.on_host1")
        assert (failed.last_status, failed.last_error_kind, failed.last_error_code) == (
            "Failed",
            "transient",
            "run_failed",
        )
        assert f"Celery worker {node}" in failed.last_status_message


def _pid(tmp_path: Path) -> int:
    return int((tmp_path / "run" / "pid").read_text())


def test_a_terminated_run_stops_on_its_worker_and_ends_canceled(
    celery_deployment, tmp_path: Path, control_conn, source, control_db
):
    celery_deployment.start_worker("host1")
    add_control(control_conn, "c.terminated")
    (queued,) = queries.queue_ready_tables(control_conn, limit=1)
    with instance_of(celery_deployment) as instance:
        run = launch_sleep_run(
            instance, tmp_path / "run", tags={attempt_tag(queued.history_id): "c.terminated"}
        )
        wait_started(instance, run.run_id, tmp_path / "run")

        outcome = terminate_run(instance, run.run_id, "In Progress for more than 60s")

        assert outcome == f"run {run.run_id} terminated (CANCELED)"
        assert (tmp_path / "run" / "interrupted").read_text() == run.run_id  # the op's interruption path ran
        assert instance.get_run_by_id(run.run_id).status == DagsterRunStatus.CANCELED
        load_run_canceled_sensor(
            _status_context(
                instance, run.run_id, DagsterEventType.RUN_CANCELED, "load_run_canceled_sensor", control_db
            )
        )
        cancelled = row(control_conn, "c.terminated")  # the sleep job never starts the load: requeued
        assert (cancelled.last_status, cancelled.retry_count) == (None, 0)
        assert "was cancelled before the load started" in cancelled.last_status_message

        # The worker is free again: it takes the next run, which ignores SIGINT and is killed after the grace.
        stubborn = launch_sleep_run(instance, tmp_path / "stubborn", stubborn=True)
        pid = wait_started(instance, stubborn.run_id, tmp_path / "stubborn")

        outcome = terminate_run(instance, stubborn.run_id, "In Progress for more than 60s")

        assert outcome == f"run {stubborn.run_id} terminated (CANCELED)"
        assert (tmp_path / "stubborn" / "interrupted").exists()  # it saw SIGINT and went on
        wait_for(lambda: not pid_alive(pid), f"the stubborn run's process {pid} to be killed", timeout=30)
        ended = instance.get_run_by_id(stubborn.run_id)
        assert ended.status == DagsterRunStatus.CANCELED
        (canceled,) = instance.all_logs(stubborn.run_id, of_type=DagsterEventType.RUN_CANCELED)
        assert "did not stop within 5s of SIGINT" in canceled.dagster_event.message


def test_terminating_a_run_whose_worker_is_gone_cancels_it_at_once(celery_deployment, tmp_path: Path):
    node = celery_deployment.start_worker("host1")
    with instance_of(celery_deployment) as instance:
        run = launch_sleep_run(instance, tmp_path / "run")
        wait_started(instance, run.run_id, tmp_path / "run")
        celery_deployment.kill_worker_host()

        outcome = terminate_run(instance, run.run_id, "In Progress for more than 60s")

        assert outcome == f"run {run.run_id} terminated (CANCELED)"
        (canceled,) = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_CANCELED)
        assert f"Celery worker {node}" in canceled.dagster_event.message
        assert "did not answer" in canceled.dagster_event.message
