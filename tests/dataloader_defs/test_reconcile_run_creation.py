"""The reconcile pass fails a Queued attempt only when Dagster will not create its run any more: driven by
Dagster's own sensor daemon code (execute_sensor_iteration) on the real master sensor, with the
daemon stopped part-way through submitting a tick, a tick that failed and is retried, and one that is
not retried any more."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterRunStatus, build_sensor_context
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import TickStatus
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.sensor import execute_sensor_iteration
from defs_support import add_control, row, set_row

from control_db import queries
from dataloader_defs.defs.run_tags import runs_of_attempt
from dataloader_defs.defs.sensors.reconcile_monitor import reconcile_monitor
from dataloader_defs.defs.sensors.run_creation import MASTER_SENSOR_NAME, master_ticks

LOCATION = Path(__file__).with_name("master_sensor_location.py")


@pytest.fixture
def settings(control_db_url, monkeypatch):
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    monkeypatch.setenv("DATALOADER_MASTER_INTERVAL_S", "1")
    monkeypatch.setenv("DATALOADER_RECONCILE_QUEUED_GRACE_S", "0")


@contextmanager
def daemon_workspace(instance) -> Iterator:
    """What the sensor daemon sees: the code location, loaded now (its assets are the control rows)."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            python_file=str(LOCATION), attribute="defs", working_directory=str(LOCATION.parent)
        ),
        location_name="dataloader_test",
    )
    with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as context:
        yield context


def _daemon_tick(workspace, crash: object | None = None, at: str = "RUN_IDS_RESERVED") -> None:
    """One pass of the sensor daemon (after the master sensor's 1 s interval), optionally crashing at
    `at` (Dagster's own crash points): an Exception fails the tick, SIGINT stops the 'daemon' there."""
    time.sleep(1.1)
    flags = {MASTER_SENSOR_NAME: {at: crash}} if crash is not None else None
    list(execute_sensor_iteration(workspace, logging.getLogger("test"), None, None, debug_crash_flags=flags))


def _reconcile(instance, control_db) -> None:
    reconcile_monitor(build_sensor_context(instance=instance, resources={"control_db": control_db}))


def _newest_tick(instance):
    return master_ticks(instance, since=0.0, repository_name=None)[0]


def test_a_queued_row_waits_while_its_tick_is_submitting_and_is_failed_once_no_run_will_come(
    control_conn, source, instance, control_db, settings
):
    add_control(control_conn, "r.slow")
    add_control(control_conn, "r.dropped", next_load_date_time=datetime.now(UTC) + timedelta(days=1))
    with daemon_workspace(instance) as workspace:
        _slow_then_dropped(control_conn, instance, control_db, workspace)


def _slow_then_dropped(control_conn, instance, control_db, workspace) -> None:

    # The daemon evaluated the sensor (the row is Queued, its run id reserved) and stopped before
    # creating the run: under load that is minutes of "no run carries the attempt".
    with pytest.raises(KeyboardInterrupt):
        _daemon_tick(workspace, crash=signal.SIGINT)
    assert _newest_tick(instance).status == TickStatus.STARTED
    slow = queries.history_rows(control_conn, "r.slow")[-1].id
    assert runs_of_attempt(instance, slow, "r.slow") == []
    set_row(control_conn, "r.slow", status_changed_at=datetime.now(UTC) - timedelta(minutes=10))
    _reconcile(instance, control_db)
    assert row(control_conn, "r.slow").last_status == "Queued"

    _daemon_tick(workspace)  # the daemon resumes the tick and creates the run
    (run,) = runs_of_attempt(instance, slow, "r.slow")
    assert run.status == DagsterRunStatus.QUEUED and _newest_tick(instance).status == TickStatus.SUCCESS
    _reconcile(instance, control_db)
    assert row(control_conn, "r.slow").last_status == "Queued"

    # A tick that fails after reserving its runs is retried once by the daemon: wait; then not: fail.
    set_row(control_conn, "r.dropped", next_load_date_time=datetime.now(UTC))
    _daemon_tick(workspace, crash=Exception("code server unreachable"))
    assert _newest_tick(instance).status == TickStatus.FAILURE
    _reconcile(instance, control_db)
    assert row(control_conn, "r.dropped").last_status == "Queued"
    _daemon_tick(workspace, crash=Exception("code server unreachable"), at="TICK_HELD")  # so does the retry
    failed_tick = _newest_tick(instance)
    assert failed_tick.status == TickStatus.FAILURE and failed_tick.tick_data.failure_count == 2
    _reconcile(instance, control_db)
    dropped = row(control_conn, "r.dropped")
    history_id = queries.history_rows(control_conn, "r.dropped")[-1].id
    assert (dropped.last_status, dropped.retry_count) == (None, 0)  # back in its queue, no retry used
    assert dropped.last_status_message == (
        f"requeued (no retry used): no run was created for attempt {history_id}: master_sensor tick {failed_tick.tick_id} "
        "requested its run but ended FAILURE without creating it"
    )
    assert row(control_conn, "r.slow").last_status == "Queued"  # its run is still waiting in the queue


def test_a_tick_stuck_started_holds_a_row_only_up_to_the_upper_bound(
    control_conn, source, instance, control_db, settings, monkeypatch
):
    add_control(control_conn, "r.stuck")
    with daemon_workspace(instance) as workspace, pytest.raises(KeyboardInterrupt):
        _daemon_tick(workspace, crash=signal.SIGINT)  # a daemon that never comes back
    history_id = queries.history_rows(control_conn, "r.stuck")[-1].id
    _reconcile(instance, control_db)
    assert row(control_conn, "r.stuck").last_status == "Queued"

    monkeypatch.setenv("DATALOADER_RECONCILE_QUEUED_MAX_WAIT_S", "600")
    control_conn.execute(
        "UPDATE dataloader.historical_metadata SET load_queued_time = now() - interval '11 minutes' WHERE id = %s",
        (history_id,),
    )
    _reconcile(instance, control_db)
    stuck = row(control_conn, "r.stuck")
    assert (stuck.last_status, stuck.retry_count) == (None, 0)
    assert (
        stuck.last_status_message
        == f"requeued (no retry used): no run was created for attempt {history_id} within 600s"
    )
    assert queries.history_row(control_conn, history_id).error_code == "not_started"
