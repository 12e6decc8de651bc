"""Stopping a Dagster run from a sensor, whatever the run coordinator and launcher can do."""

from dagster import DagsterInstance


def terminate_run(instance: DagsterInstance, run_id: str, reason: str) -> str:
    """Terminate a Dagster run through the run coordinator (queued or started); report it canceled when
    the launcher cannot reach it. Returns what happened, for the row's message."""
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id} no longer exists"
    if run.is_finished:
        return f"run {run_id} already {run.status.value}"
    if instance.run_coordinator.cancel_run(run_id):
        return f"run {run_id} terminated"
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_canceled(run, message=reason)
    return f"run {run_id} reported canceled (the run launcher could not terminate it)"
