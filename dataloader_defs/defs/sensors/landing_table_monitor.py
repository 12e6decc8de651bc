"""landing_table_monitor: newly landed tables get staging models via landing_table_git_job."""

import hashlib

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from dataloader_defs.defs.jobs import landing_table_git_job
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.job_runs import run_in_progress
from dataloader_defs.defs.settings import interval


@sensor(
    job=landing_table_git_job,
    minimum_interval_seconds=interval("DATALOADER_LANDING_INTERVAL_S"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests landing_table_git_job for rows loaded at least once without a staging model.",
)
def landing_table_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """One job run for all pending rows, unless one is already queued or running."""
    from control_db import queries

    with control_db.connect("dagster-landing") as conn:
        keys = sorted(row.control_key for row in queries.landing_pending(conn))
    if not keys:
        return SensorResult(skip_reason=SkipReason("no landed table waits for a staging model"))
    busy = run_in_progress(context, landing_table_git_job.name)
    if busy:
        return SensorResult(skip_reason=SkipReason(f"landing_table_git_job run {busy} still in progress"))
    digest = hashlib.sha1("\n".join(keys).encode()).hexdigest()[:12]
    tick = int(context.last_tick_completion_time or 0)
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"landing:{digest}:{tick}",
                run_config={"ops": {"write_staging_models": {"config": {"control_keys": keys}}}},
                tags={"dataloader/landing_tables": str(len(keys))},
            )
        ]
    )
