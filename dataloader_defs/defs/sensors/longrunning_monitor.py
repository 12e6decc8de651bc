"""longrunning_monitor: rows In Progress longer than the threshold: terminate the run, mark Failed."""

from dagster import (
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.polling import polling_sensor
from dataloader_defs.defs.sensors.run_termination import terminate_run
from dataloader_defs.defs.settings import env_seconds


@polling_sensor(
    every="DATALOADER_LONGRUNNING_INTERVAL_S",
    description="Terminates loads In Progress longer than DATALOADER_LONGRUNNING_THRESHOLD_S and fails their rows.",
)
def longrunning_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """Stuck In Progress -> Failed -> run terminated. The row is failed first: the run's own record of
    its interruption (its workers stopped, perhaps killed) then finds it no longer In Progress, so
    the row says why it was stopped; failed_monitor retries it only once the run has ended."""
    from control_db import queries

    threshold = env_seconds("DATALOADER_LONGRUNNING_THRESHOLD_S")
    failed = []
    with control_db.connect("dagster-longrunning") as conn:
        for row in queries.stuck_running(conn, older_than=threshold):
            reason = f"In Progress for more than {int(threshold.total_seconds())}s"
            run = f"its run {row.last_run_id} is terminated" if row.last_run_id else "no run id"
            if not queries.mark_failed(
                conn, row.control_key, message=f"{reason}; {run}", kind="transient", code="running_too_long"
            ):
                continue  # it finished meanwhile
            failed.append(row.control_key)
            outcome = terminate_run(context.instance, row.last_run_id, reason) if row.last_run_id else run
            context.log.warning(f"{row.control_key}: {reason}; {outcome}")
    return SensorResult(skip_reason=None if failed else SkipReason("no row stuck In Progress"))
