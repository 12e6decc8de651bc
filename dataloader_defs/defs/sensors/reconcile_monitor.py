"""reconcile_monitor: repair what a crash left between the control table and the Dagster runs.

- A row In Progress whose run is gone or finished becomes Failed (transient, `run_lost`).
  `dataloader load` attempts (`local-…` run ids) are no Dagster runs: those of this host whose
  process is gone are failed the same way (control_db.local_runs), others left to the longrunning
  monitor.
- A row Queued whose queued run finished without starting the load, or for which no run will be
  created any more, goes back to its queue without using a retry (sensors/unstarted.py; Failed,
  transient `queued_run_lost`, after DATALOADER_UNSTARTED_REQUEUES such attempts in a row).
  "No run any more" is read from the master sensor's tick records, not from a fixed grace (see
  run_creation.py): under load run creation takes minutes. DATALOADER_RECONCILE_QUEUED_GRACE_S is
  only the age before a Queued row is looked at; DATALOADER_RECONCILE_QUEUED_MAX_WAIT_S the upper
  bound after which it fails whatever the ticks say.
- History rows that never got a final status are closed.
"""

from datetime import UTC, datetime, timedelta

import psycopg
from dagster import (
    DagsterInstance,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from control_db.lifecycle import LOCAL_RUN_PREFIX
from control_db.local_runs import fail_dead_local_runs
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.run_tags import runs_of_attempt
from dataloader_defs.defs.sensors.polling import polling_sensor
from dataloader_defs.defs.sensors.run_creation import CLOCK_MARGIN, master_ticks, run_still_coming, why_no_run
from dataloader_defs.defs.sensors.unstarted import requeue_or_fail
from dataloader_defs.defs.settings import env_seconds

ORPHAN_MIN_AGE = timedelta(minutes=5)


def close_orphan_history(conn: psycopg.Connection, *, min_age: timedelta) -> int:
    """Close open history rows (older than `min_age`) that are not the current attempt of a Queued or
    In Progress control row; return how many were closed."""
    from control_db import queries

    newest_open: dict[str, int] = {}
    candidates = queries.open_history_rows(conn)
    for history in candidates:
        newest_open[history.control_key] = max(history.id, newest_open.get(history.control_key, 0))
    cutoff = datetime.now(UTC) - min_age
    closed = 0
    for history in candidates:
        if history.created_at > cutoff:
            continue
        row = queries.get_control_row(conn, history.control_key)
        current = row is not None and row.last_status in ("Queued", "In Progress")
        if current and history.id == newest_open[history.control_key]:
            continue
        state = "no control row" if row is None else f"control row is {row.last_status or 'NULL'}"
        closed += queries.close_history_row(conn, history.id, message=f"closed by reconcile: {state}")
    return closed


def _fail_lost_running(conn: psycopg.Connection, instance: DagsterInstance) -> list[str]:
    from control_db import queries

    failed = []
    for row in queries.in_progress_rows(conn):
        if not row.last_run_id or row.last_run_id.startswith(LOCAL_RUN_PREFIX):
            continue  # no Dagster run to compare with: the longrunning monitor handles it
        run = instance.get_run_by_id(row.last_run_id)
        if run is not None and not run.is_finished:
            continue
        state = "no longer exists" if run is None else f"ended {run.status.value}"
        message = f"run {row.last_run_id} {state} but the row was still In Progress"
        if queries.mark_failed(conn, row.control_key, message=message, kind="transient", code="run_lost"):
            failed.append(f"{row.control_key} failed")
    return failed


def _requeue_lost_queued(
    conn: psycopg.Connection,
    instance: DagsterInstance,
    *,
    min_age: timedelta,
    max_wait: timedelta,
    repository_name: str | None = None,
) -> list[str]:
    """Requeue Queued attempts whose runs all finished without starting the load, or for which no run
    will be created (run_creation.py says when that is known); wait otherwise, at most `max_wait`."""
    from control_db import queries

    attempts = queries.queued_attempts(conn, older_than=min_age)
    if not attempts:
        return []
    queued_at = {h: queries.history_row(conn, h).load_queued_time or datetime.now(UTC) for _, h in attempts}
    since = min(queued_at.values()) - max_wait - CLOCK_MARGIN
    ticks = master_ticks(instance, since=since.timestamp(), repository_name=repository_name)  # before runs
    repaired = []
    for control_key, history_id in attempts:
        runs = runs_of_attempt(instance, history_id, control_key)
        if any(not run.is_finished for run in runs):
            continue
        waited = datetime.now(UTC) - queued_at[history_id]
        if runs:
            message = f"the run queued for attempt {history_id} ended {runs[0].status.value} without starting the load"
        elif waited > max_wait:
            message = f"no run was created for attempt {history_id} within {int(max_wait.total_seconds())}s"
        elif run_still_coming(ticks, history_id, queued_at[history_id].timestamp()):
            continue
        else:
            message = f"no run was created for attempt {history_id}: {why_no_run(ticks, history_id)}"
        outcome = requeue_or_fail(
            conn,
            control_key,
            history_id=history_id,
            message=message,
            code="queued_run_lost",
            run_id=runs[0].run_id if runs else None,
        )
        if outcome != "unchanged":
            repaired.append(f"{control_key} {outcome}")
    return repaired


@polling_sensor(
    every="DATALOADER_RECONCILE_INTERVAL_S",
    description="Fails rows left In Progress or Queued by a run that no longer exists or has finished; "
    "closes orphan history rows.",
)
def reconcile_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Compare the control table with the Dagster run storage and repair what a crash left behind."""
    with control_db.connect("dagster-reconcile") as conn:
        repaired = _fail_lost_running(conn, context.instance) + _requeue_lost_queued(
            conn,
            context.instance,
            min_age=env_seconds("DATALOADER_RECONCILE_QUEUED_GRACE_S"),
            max_wait=env_seconds("DATALOADER_RECONCILE_QUEUED_MAX_WAIT_S"),
            repository_name=context.repository_name,
        )
        repaired += [f"{key} failed" for key in fail_dead_local_runs(conn)]
        closed = close_orphan_history(conn, min_age=ORPHAN_MIN_AGE)
    for change in repaired:
        context.log.warning(f"{change} by reconcile (its run is gone or finished)")
    if closed:
        context.log.warning(f"closed {closed} history row(s) that never got a final status")
    return SensorResult(
        skip_reason=None if repaired or closed else SkipReason("control table and runs agree")
    )
