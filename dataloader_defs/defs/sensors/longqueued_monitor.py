"""longqueued_monitor: rows Queued longer than the threshold go back to their queue; their runs are stopped.

A row Queued that long never started its load (a full run queue, a run Dagster never launched): not a
failed load, so it is requeued without using a retry (sensors/unstarted.py), and only after
DATALOADER_UNSTARTED_REQUEUES such attempts in a row failed (transient, `queued_too_long`).
"""

from dagster import (
    DagsterRunStatus,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.run_tags import runs_of_attempt
from dataloader_defs.defs.sensors.polling import polling_sensor
from dataloader_defs.defs.sensors.run_termination import terminate_run
from dataloader_defs.defs.sensors.unstarted import requeue_or_fail
from dataloader_defs.defs.settings import env_seconds

# A run for a row still Queued never reached mark_in_progress: whatever state it is in, stop it.
UNFINISHED = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@polling_sensor(
    every="DATALOADER_LONGQUEUED_INTERVAL_S",
    description="Requeues rows Queued longer than DATALOADER_LONGQUEUED_THRESHOLD_S (no retry used) and stops their waiting runs.",
)
def longqueued_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Stuck Queued -> back to the queue (failed after DATALOADER_UNSTARTED_REQUEUES in a row)."""
    from control_db import queries

    threshold = env_seconds("DATALOADER_LONGQUEUED_THRESHOLD_S")
    changed = []
    with control_db.connect("dagster-longqueued") as conn:
        for control_key, history_id in queries.queued_attempts(conn, older_than=threshold):
            waiting = runs_of_attempt(context.instance, history_id, control_key, UNFINISHED)
            for run in waiting:
                terminate_run(context.instance, run.run_id, "queued too long")
            message = (
                f"queued for more than {int(threshold.total_seconds())}s without starting "
                f"(run queue full or run never launched); stopped {len(waiting)} waiting run(s)"
            )
            outcome = requeue_or_fail(
                conn,
                control_key,
                history_id=history_id,
                message=message,
                code="queued_too_long",
                run_id=waiting[0].run_id if waiting else None,
            )
            if outcome != "unchanged":
                changed.append(control_key)
                context.log.warning(f"{control_key}: {outcome}: {message}")
    return SensorResult(skip_reason=None if changed else SkipReason("no row stuck in Queued"))
