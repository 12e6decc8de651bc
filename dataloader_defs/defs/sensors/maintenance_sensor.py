"""maintenance_sensor: tables with DATALOADER_MAINTENANCE_AFTER_LOADS successful loads since their
last maintenance get a dataloader_maintenance_job run (checked every DATALOADER_MAINTENANCE_INTERVAL_S).

Each tick first releases maintenance claims whose owner is gone (a run that ended without releasing,
an ended `dataloader maintain` of this host), so such a claim stops holding loads back before it
expires."""

from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason

from dataloader_defs.defs.maintenance_job import dataloader_maintenance_job
from dataloader_defs.defs.maintenance_owners import owner_gone_in
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.job_runs import run_in_progress
from dataloader_defs.defs.sensors.polling import polling_sensor
from dataloader_defs.defs.settings import env_int

TABLES_PER_RUN = 20


@polling_sensor(
    job=dataloader_maintenance_job,
    every="DATALOADER_MAINTENANCE_INTERVAL_S",
    description="Requests dataloader_maintenance_job for tables loaded often enough since their last compaction.",
)
def maintenance_sensor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """One maintenance run for the due tables, unless one is still running."""
    from control_db import maintenance_lifecycle as lifecycle

    released = lifecycle.release_gone_claims(control_db.url, owner_gone_in(context.instance))
    if released:
        context.log.info(f"released the maintenance claims of gone owners on {', '.join(released)}")
    busy = run_in_progress(context, dataloader_maintenance_job.name)
    if busy:
        return SensorResult(skip_reason=SkipReason(f"maintenance run {busy} still in progress"))
    after = max(1, env_int("DATALOADER_MAINTENANCE_AFTER_LOADS"))
    keys = lifecycle.tables_due(control_db.url, after_loads=after, limit=TABLES_PER_RUN)
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
