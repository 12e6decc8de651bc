"""failed_monitor: Failed rows under max_retries get a dataloader_retry_analysis run, one per failure.

A failure is identified by (control_key, retry_count, time of the failure). While an analysis run for
it is queued or running nothing new is requested; when one ended without deciding (cancelled, its
run worker lost) the next request gets a fresh run key, so a failure is never stuck behind a run key
the daemon has already used.

A row the long-running monitor failed waits while its run is still alive (the monitor fails the row
first, then stops the run, which may take its termination grace): a retry must never load a table
beside a run that is still loading it. A row its own run failed (the worker died, the source
refused) does not wait: that run has finished with the table, and a run whose process died with its
code server can stay STARTED in Dagster forever.
"""

from dagster import (
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.defs.jobs import dataloader_retry_analysis
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.sensors.polling import polling_sensor

TAG_RETRY_FOR = "dataloader/retry_for"
TAG_FAILURE = "dataloader/failure"
# Failures recorded from outside a run that may still be loading the table.
WAIT_FOR_RUN_CODES = frozenset({"running_too_long"})


def _run_still_alive(context: SensorEvaluationContext, run_id: str | None) -> bool:
    """Whether the Dagster run that last loaded the row exists and has not finished."""
    if not run_id:
        return False
    run = context.instance.get_run_by_id(run_id)  # `local-…` ids (dataloader load) are no Dagster runs
    return run is not None and not run.is_finished


@polling_sensor(
    job=dataloader_retry_analysis,
    every="DATALOADER_FAILED_INTERVAL_S",
    description="Requests dataloader_retry_analysis for each Failed row with retries left.",
)
def failed_monitor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
    """One retry-analysis run per failure; another only when the previous one ended undecided."""
    from control_db import queries

    with control_db.connect("dagster-failed") as conn:
        rows = queries.failed_retryable(conn)
    requests = []
    for row in rows:
        if row.last_error_code in WAIT_FOR_RUN_CODES and _run_still_alive(context, row.last_run_id):
            continue
        failed_at = row.status_changed_at or row.updated_at
        failure = f"{row.retry_count}:{failed_at.isoformat() if failed_at else '-'}"
        earlier = context.instance.get_runs(
            filters=RunsFilter(tags={TAG_RETRY_FOR: row.control_key, TAG_FAILURE: failure})
        )
        if any(not run.is_finished for run in earlier):
            continue  # an analysis of this failure is queued or running
        requests.append(
            RunRequest(
                run_key=f"retry:{row.control_key}:{failure}:{len(earlier)}",
                run_config={"ops": {"analyse_failure": {"config": {"control_key": row.control_key}}}},
                # No dataloader/source tag: analysis must not wait behind the source's load slots.
                tags={TAG_RETRY_FOR: row.control_key, TAG_FAILURE: failure},
            )
        )
    return SensorResult(
        run_requests=requests, skip_reason=None if requests else SkipReason("no retryable failure")
    )
