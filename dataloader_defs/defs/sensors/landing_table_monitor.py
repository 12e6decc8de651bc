"""landing_table_monitor: newly landed tables get staging models via landing_table_git_job."""

import hashlib

from dagster import (
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)
from dagster._core.storage.dagster_run import NOT_FINISHED_STATUSES

from dataloader_defs.defs.jobs import landing_table_git_job
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.polling import polling_sensor
from dataloader_defs.defs.settings import env_int


@polling_sensor(
    job=landing_table_git_job,
    every="DATALOADER_LANDING_INTERVAL_S",
    description="Requests landing_table_git_job for a batch of rows loaded at least once without a staging model.",
)
def landing_table_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """One job run for up to DATALOADER_LANDING_BATCH pending rows, unless one is queued or running.

    One landing run at a time: runs commit into the same models repository.
    """
    from control_db import queries

    busy = context.instance.get_runs(
        filters=RunsFilter(job_name=landing_table_git_job.name, statuses=list(NOT_FINISHED_STATUSES)),
        limit=1,
    )
    if busy:
        return SensorResult(
            skip_reason=SkipReason(
                f"landing_table_git_job run {busy[0].run_id} is {busy[0].status.value.lower()}; "
                "the next batch waits for it"
            )
        )
    with control_db.connect("dagster-landing") as conn:
        pending = queries.landing_pending(conn, limit=env_int("DATALOADER_LANDING_BATCH"))
    keys = [row.control_key for row in pending]
    if not keys:
        return SensorResult(skip_reason=SkipReason("no landed table waits for a staging model"))
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
