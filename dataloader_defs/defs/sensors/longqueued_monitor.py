"""longqueued_monitor: rows Queued longer than the threshold become Failed; their queued runs are cancelled."""

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
    description="Fails rows Queued longer than DATALOADER_LONGQUEUED_THRESHOLD_S and cancels their waiting runs.",
)
def longqueued_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Stuck Queued -> Failed (the failed monitor then decides about a retry)."""
    from control_db import queries

    threshold = env_seconds("DATALOADER_LONGQUEUED_THRESHOLD_S")
    failed = []
    with control_db.connect("dagster-longqueued") as conn:
        for control_key, history_id in queries.queued_attempts(conn, older_than=threshold):
            waiting = runs_of_attempt(context.instance, history_id, control_key, UNFINISHED)
            for run in waiting:
                terminate_run(context.instance, run.run_id, "queued too long")
            message = (
                f"queued for more than {int(threshold.total_seconds())}s without starting "
                f"(run queue full or run never launched); stopped {len(waiting)} waiting run(s)"
            )
            if queries.mark_failed(
                conn, control_key, message=message, kind="transient", code="queued_too_long"
            ):
                failed.append(control_key)
                context.log.warning(f"{control_key}: {message}")
    return SensorResult(skip_reason=None if failed else SkipReason("no row stuck in Queued"))
