"""Stopping a Dagster run from a sensor, whatever the run coordinator and launcher can do."""

from dagster import DagsterInstance


def terminate_run(instance: DagsterInstance, run_id: str, reason: str) -> str:
    """Terminate a Dagster run through the run coordinator (queued or started); report it canceled when
    the launcher cannot reach it. Returns what happened, for the row's message.

    A launcher that can stop the run (Dagster's default launcher, DataloaderCeleryRunLauncher) reports
    it CANCELING first, so the interrupted run ends CANCELED and the cancel sensor fires; one that
    returns before the run has stopped leaves it CANCELING, and run monitoring's cancel timeout ends it.
    """
    run = instance.get_run_by_id(run_id)
    if run is None:
        return f"run {run_id} no longer exists"
    if run.is_finished:
        return f"run {run_id} already {run.status.value}"
    if instance.run_coordinator.cancel_run(run_id):
        run = instance.get_run_by_id(run_id)
        return f"run {run_id} terminated ({run.status.value if run else 'gone'})"
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_canceled(run, message=reason)
    return f"run {run_id} reported canceled (the run launcher could not terminate it)"
