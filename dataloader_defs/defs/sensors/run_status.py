"""Run-status sensors: a load run that fails or is cancelled marks its table Failed at once, or, when
the run ended before the load started, puts the table back in its queue without using a retry. A
failed run whose every table went back to its queue that way never loaded anything: it is reported
cancelled (Dagster derives an asset's and its checks' failed state from a FAILURE run, not a CANCELED
one), with a message that says why.

Only when the run still owns the row: In Progress under this run (Failed: the asset records every
failure it sees itself; this covers runs that died before it could, a killed step process or a lost
run worker), or Queued with this run's attempt still open (requeued: a dequeue that timed out under
load, a run worker that never came up, Ctrl-C while the run was starting; sensors/unstarted.py).
"""

from __future__ import annotations

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)
from dagster._utils.error import SerializableErrorInfo

from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.run_tags import attempt_of_tag
from dataloader_defs.defs.sensors.unstarted import requeue_or_fail

FAILURE_REASON_TAG = "dagster/failure_reason"
# Dagster's message for a run failed without one (instance.report_run_failed's default): says nothing.
DAGSTER_OUTSIDE_FAILURE = "This run has been marked as failed from outside the execution context."


def fail_rows_of_run(
    control_db: ControlDatabase, run: DagsterRun, *, ended: str, cause: str | None, code: str
) -> list[tuple[str, str]]:
    """Mark Failed (transient, `code`) every table this run was loading; requeue, without using a
    retry, every table it never started (still Queued with its attempt open: the run ended before the
    load began, sensors/unstarted.py). `ended` says how the run ended ("failed"), `cause` why. Returns
    (what was done to a key, the message written)."""
    from control_db import queries

    attempts = {attempt: key for tag, key in run.tags.items() if (attempt := attempt_of_tag(tag)) is not None}
    because = f": {cause}" if cause else ""
    message = f"Dagster run {run.run_id} {ended} before the load recorded its outcome{because}"
    unstarted = f"Dagster run {run.run_id} {ended} before the load started{because}"
    changed = []
    with control_db.connect("dagster-run-status") as conn:
        for row in queries.rows_of_run(conn, run.run_id):  # In Progress under this run
            if queries.mark_failed(
                conn, row.control_key, message=message, kind="transient", code=code, run_id=run.run_id
            ):
                changed.append((f"{row.control_key} failed", message))
        for history_id, key in attempts.items():  # its attempts no run started
            row = queries.get_control_row(conn, key)
            if row is None or row.last_status != "Queued":
                continue
            outcome = requeue_or_fail(
                conn, key, history_id=history_id, message=unstarted, code=code, run_id=run.run_id
            )
            if outcome != "unchanged":
                changed.append((f"{key} {outcome}", unstarted))
    return changed


def _first_line(error: SerializableErrorInfo) -> str:
    while error.cls_name == "DagsterExecutionStepExecutionError" and error.cause is not None:
        error = error.cause  # "Error occurred while executing op …": the op's own error says more
    text = error.message.strip()
    return text.splitlines()[0] if text else error.cls_name or "unknown error"


def _failure_text(record: EventLogEntry) -> str | None:
    """What one failure-bearing event says went wrong, or None when it says nothing specific."""
    event = record.dagster_event
    if event is None:
        return None
    if event.event_type == DagsterEventType.STEP_FAILURE and event.step_failure_data:
        return _first_line(event.step_failure_data.error) if event.step_failure_data.error else None
    if event.event_type == DagsterEventType.ENGINE_EVENT:
        error = event.engine_event_data.error if event.engine_event_data else None
        return f"{event.message or 'engine error'}: {_first_line(error)}" if error else None
    if event.event_type == DagsterEventType.RUN_FAILURE:
        error = event.job_failure_data.error if event.job_failure_data else None
        if error is not None:
            return _first_line(error)
        message = (event.message or "").strip()
        return message if message and message != DAGSTER_OUTSIDE_FAILURE else None
    return None


def run_failure_cause(instance: DagsterInstance, run: DagsterRun, fallback: str) -> str:
    """What actually went wrong, with Dagster's failure reason: the first step failure's error, else
    the first engine event that carries an error (a run worker that could not load the job, a launcher
    or monitor that failed the run from outside the step), else the run-failure event's own message
    (a dead Celery worker, a start timeout), else `fallback`."""
    reason = run.tags.get(FAILURE_REASON_TAG)
    cause = None
    for event_type in (
        DagsterEventType.STEP_FAILURE,
        DagsterEventType.ENGINE_EVENT,
        DagsterEventType.RUN_FAILURE,
    ):
        records = instance.all_logs(run.run_id, of_type=event_type)
        cause = next((text for record in records if (text := _failure_text(record))), None)
        if cause:
            break
    cause = cause or fallback
    return f"{cause} (failure reason {reason})" if reason else cause


@run_failure_sensor(
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks a load's table Failed when its Dagster run fails without recording the outcome; "
    "requeues it (no retry used) when the run failed before the load started.",
)
def load_run_failure_sensor(context: RunFailureSensorContext, control_db: ControlDatabase) -> None:
    """Failed run -> Failed row (no-op when the asset already recorded the failure), or requeued row."""
    run = context.dagster_run
    cause = run_failure_cause(context.instance, run, context.failure_event.message or "run failed")
    changes = fail_rows_of_run(control_db, run, ended="failed", cause=cause, code="run_failed")
    for change, message in changes:
        context.log.warning(f"{change}: {message}")
    if never_started_a_load(control_db, run):
        context.instance.report_run_canceled(run, message=superseded_message(cause))
        context.log.info(
            f"run {run.run_id} shown cancelled: it never started a load, its tables were requeued"
        )


def never_started_a_load(control_db: ControlDatabase, run: DagsterRun) -> bool:
    """Whether every attempt `run` was queued for went back to its queue unstarted (`not_started`,
    no load start) — by this sensor or, earlier, the reconcile pass or the long-queued monitor. False
    for a run started by hand (no attempts: its failure is its launcher's to see) and for a row failed
    after too many unstarted attempts."""
    from control_db import queries

    attempts = [attempt for tag in run.tags if (attempt := attempt_of_tag(tag)) is not None]
    if not attempts:
        return False
    with control_db.connect("dagster-run-status") as conn:
        rows = [queries.history_row(conn, attempt) for attempt in attempts]
    return all(r is not None and r.error_code == "not_started" and r.load_start_time is None for r in rows)


def superseded_message(cause: str) -> str:
    """What a run that failed before any of its loads started says once DataLoader requeued them all."""
    return (
        f"DataLoader: this run ended before any load started ({cause}); every table it was queued for "
        "went back to its queue without using a retry, and a new run loads it. The run is marked "
        "cancelled so that Dagster does not show those tables and their checks as failed."
    )


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks a load's table Failed when its Dagster run is cancelled; requeues it (no retry "
    "used) when the run was cancelled before the load started.",
)
def load_run_canceled_sensor(context: RunStatusSensorContext, control_db: ControlDatabase) -> None:
    """Cancelled run -> Failed row, or requeued row."""
    run = context.dagster_run
    for change, message in fail_rows_of_run(
        control_db, run, ended="was cancelled", cause=None, code="run_cancelled"
    ):
        context.log.warning(f"{change}: {message}")
