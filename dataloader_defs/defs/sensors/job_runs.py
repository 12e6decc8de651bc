"""What a sensor that launches one job at a time asks the Dagster instance."""

from dagster import RunsFilter, SensorEvaluationContext
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES


def run_in_progress(context: SensorEvaluationContext, job_name: str) -> str | None:
    """The id of a queued/started/running run of `job_name`, or None."""
    runs = context.instance.get_runs(
        filters=RunsFilter(job_name=job_name, statuses=list(IN_PROGRESS_RUN_STATUSES)), limit=1
    )
    return runs[0].run_id if runs else None
