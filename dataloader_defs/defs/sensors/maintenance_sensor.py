"""maintenance_sensor: tables with DATALOADER_MAINTENANCE_AFTER_LOADS successful loads since their
last maintenance get a dataloader_maintenance_job run (checked every DATALOADER_MAINTENANCE_INTERVAL_S)."""

from dagster import DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from dataloader_defs.defs.maintenance_job import dataloader_maintenance_job
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.job_runs import run_in_progress
from dataloader_defs.defs.settings import env_int, interval

TABLES_PER_RUN = 20


@sensor(
    job=dataloader_maintenance_job,
    minimum_interval_seconds=interval("DATALOADER_MAINTENANCE_INTERVAL_S"),
    default_status=DefaultSensorStatus.RUNNING,
    description="Requests dataloader_maintenance_job for tables loaded often enough since their last compaction.",
)
def maintenance_sensor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """One maintenance run for the due tables, unless one is still running."""
    from control_db import queries

    busy = run_in_progress(context, dataloader_maintenance_job.name)
    if busy:
        return SensorResult(skip_reason=SkipReason(f"maintenance run {busy} still in progress"))
    after = max(1, env_int("DATALOADER_MAINTENANCE_AFTER_LOADS"))
    with control_db.connect("dagster-maintenance") as conn:
        keys = queries.maintenance_due(conn, after_loads=after, limit=TABLES_PER_RUN)
    if not keys:
        return SensorResult(skip_reason=SkipReason(f"no table has {after} loads since its last maintenance"))
    tick = int(context.last_tick_completion_time or 0)
    return SensorResult(
        run_requests=[
            RunRequest(
                run_key=f"maintenance:{','.join(keys)}:{tick}",
                run_config={"ops": {"maintain_tables": {"config": {"control_keys": keys}}}},
                tags={"dataloader/maintenance_tables": str(len(keys))},
            )
        ]
    )
