"""reconcile_monitor: rows In Progress whose run is gone or finished become Failed; orphan history closes."""

from datetime import UTC, datetime, timedelta

import psycopg
from dagster import DefaultSensorStatus, SensorEvaluationContext, SensorResult, SkipReason, sensor

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.settings import interval

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


@sensor(
    minimum_interval_seconds=interval("DATALOADER_RECONCILE_INTERVAL_S"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Fails rows left In Progress by a run that no longer exists or has finished; closes orphan history rows.",
)
def reconcile_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Compare the control table with the Dagster run storage and repair what a crash left behind."""
    from control_db import queries

    repaired = []
    with control_db.connect("dagster-reconcile") as conn:
        for row in queries.in_progress_rows(conn):
            if not row.last_run_id:
                continue  # no run recorded: the longrunning monitor handles it after its threshold
            run = context.instance.get_run_by_id(row.last_run_id)
            if run is not None and not run.is_finished:
                continue
            state = "no longer exists" if run is None else f"ended {run.status.value}"
            message = f"TransientLoadError: run {row.last_run_id} {state} but the row was still In Progress"
            if queries.mark_failed(conn, row.control_key, message=message):
                repaired.append(row.control_key)
                context.log.warning(f"{row.control_key}: {message}")
        closed = close_orphan_history(conn, min_age=ORPHAN_MIN_AGE)
    if closed:
        context.log.warning(f"closed {closed} history row(s) that never got a final status")
    return SensorResult(
        skip_reason=None if repaired or closed else SkipReason("control table and runs agree")
    )
