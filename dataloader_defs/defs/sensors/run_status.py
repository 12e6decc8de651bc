"""Run-status sensors: a load run that fails or is cancelled marks its table Failed at once."""

from dagster import (
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)

from dataloader_defs.defs.assets import TAG_CONTROL_KEY, TAG_HISTORY_ID
from dataloader_defs.defs.resources import ControlDatabase


def fail_row_of_run(control_db: ControlDatabase, run: DagsterRun, message: str) -> bool:
    """Mark the run's table Failed if this run still owns it (its In Progress run, or its Queued request)."""
    from control_db import queries

    control_key = run.tags.get(TAG_CONTROL_KEY)
    if not control_key:
        return False
    tag = run.tags.get(TAG_HISTORY_ID)
    history_id = int(tag) if tag else None
    with control_db.connect("dagster-run-status") as conn:
        row = queries.get_control_row(conn, control_key)
        if row is None:
            return False
        owns = (row.last_status == "In Progress" and row.last_run_id == run.run_id) or (
            row.last_status == "Queued" and history_id is not None and row.last_run_id in (None, run.run_id)
        )
        return owns and queries.mark_failed(conn, control_key, message=message, history_id=history_id)


@run_failure_sensor(
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks a load's table Failed when its Dagster run fails without reporting.",
)
def load_run_failure_sensor(context: RunFailureSensorContext, control_db: ControlDatabase) -> None:
    """Failed run -> Failed row (no-op when the asset already recorded the failure)."""
    error = context.failure_event.message or "run failed"
    message = f"Dagster run {context.dagster_run.run_id} failed: {error}"[:2000]
    if fail_row_of_run(control_db, context.dagster_run, message):
        context.log.warning(message)


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks a load's table Failed when its Dagster run is cancelled.",
)
def load_run_canceled_sensor(context: RunStatusSensorContext, control_db: ControlDatabase) -> None:
    """Cancelled run -> Failed row."""
    message = f"TransientLoadError: Dagster run {context.dagster_run.run_id} was cancelled"
    if fail_row_of_run(control_db, context.dagster_run, message):
        context.log.warning(message)
