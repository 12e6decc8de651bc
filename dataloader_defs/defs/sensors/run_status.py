"""Run-status sensors: a load run that fails or is cancelled marks its table Failed at once.

Only when the run still owns the row: In Progress under this run, or Queued with this run's
attempt still open (the asset records every failure it sees itself; these cover runs that died
before it could: a killed step process, a lost run worker, Ctrl-C while the run was starting).
"""

from __future__ import annotations

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.run_tags import attempt_of_tag

FAILURE_REASON_TAG = "dagster/failure_reason"


def fail_rows_of_run(control_db: ControlDatabase, run: DagsterRun, message: str, *, code: str) -> list[str]:
    """Mark Failed (transient, `code`) every table this run still owns; the keys it failed."""
    from control_db import queries

    attempts = {attempt: key for tag, key in run.tags.items() if (attempt := attempt_of_tag(tag)) is not None}
    failed = []
    with control_db.connect("dagster-run-status") as conn:
        for row in queries.rows_of_run(conn, run.run_id):  # In Progress under this run
            if queries.mark_failed(conn, row.control_key, message=message, kind="transient", code=code):
                failed.append(row.control_key)
        for history_id, key in attempts.items():  # still Queued: mark_failed's guard wants the attempt open
            row = queries.get_control_row(conn, key)
            if (
                row is not None
                and row.last_status == "Queued"
                and queries.mark_failed(
                    conn, key, message=message, kind="transient", code=code, history_id=history_id
                )
            ):
                failed.append(key)
    return failed


def run_failure_cause(instance: DagsterInstance, run: DagsterRun, fallback: str) -> str:
    """The first step failure's error (what actually went wrong), with Dagster's failure reason."""
    reason = run.tags.get(FAILURE_REASON_TAG)
    for record in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = record.dagster_event
        error = event.step_failure_data.error if event and event.step_failure_data else None
        if error is not None:
            text = error.message.strip().splitlines()[0] if error.message.strip() else error.cls_name
            return f"{text} (failure reason {reason})" if reason else str(text)
    return f"{fallback} (failure reason {reason})" if reason else fallback


@run_failure_sensor(
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks a load's table Failed when its Dagster run fails without recording the outcome.",
)
def load_run_failure_sensor(context: RunFailureSensorContext, control_db: ControlDatabase) -> None:
    """Failed run -> Failed row (no-op when the asset already recorded the failure)."""
    run = context.dagster_run
    cause = run_failure_cause(context.instance, run, context.failure_event.message or "run failed")
    message = f"Dagster run {run.run_id} failed before the load recorded its outcome: {cause}"
    for key in fail_rows_of_run(control_db, run, message, code="run_failed"):
        context.log.warning(f"{key}: {message}")


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks a load's table Failed when its Dagster run is cancelled.",
)
def load_run_canceled_sensor(context: RunStatusSensorContext, control_db: ControlDatabase) -> None:
    """Cancelled run -> Failed row."""
    message = f"Dagster run {context.dagster_run.run_id} was cancelled"
    for key in fail_rows_of_run(control_db, context.dagster_run, message, code="run_cancelled"):
        context.log.warning(f"{key}: {message}")
