"""The load lifecycle in one place: Queued -> In Progress -> run the worker -> Succeeded | Failed.

Used by the Dagster asset and by `dataloader load` alike:

    attempt = begin_attempt(url, "erp.public.orders", run_id=..., history_id=queued_id_or_None)
    result = <run the worker>             # no control-database connection is held meanwhile
    record_outcome(url, attempt, result)  # a fresh connection, retried when it drops

A run launched by hand goes through Queued like a sensor run (its history row has a queued time);
a hand load of a row the sensor already queued takes that queued attempt over, and the sensor's run
then finds it started and ends quietly. A row left In Progress by a `dataloader load` of this host
whose process has ended is failed first (`local_runs`). `record_outcome` retries for
DATALOADER_OUTCOME_RETRY_S while the control database is unreachable (`outcome_retry`). It records
the worker's own `dataloader_contract.result.LoadResult`, the contract all three packages share; this
package imports neither of the other two.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg

# LOCAL_RUN_PREFIX, OutcomeNotRecorded: re-exported, callers import them from here.
from control_db.local_runs import LOCAL_RUN_PREFIX as LOCAL_RUN_PREFIX
from control_db.local_runs import fail_dead_local_runs
from control_db.maintenance_lifecycle import maintenance_hold
from control_db.outcome_retry import CONNECT_TIMEOUT_S, outcome_retry_seconds, retry_pauses
from control_db.outcome_retry import OutcomeNotRecorded as OutcomeNotRecorded
from control_db.queries.circuit import hold_back, note_outcome
from control_db.queries.connection import connect
from control_db.queries.reads import get_control_row, get_source_config, history_row
from control_db.queries.rows import ControlRow, SourceDbConfig
from control_db.queries.transitions import (
    mark_committed_attempt,
    mark_failed,
    mark_in_progress,
    mark_succeeded,
    queue_by_hand,
)
from dataloader_contract.result import LoadResult


@dataclass(frozen=True)
class Attempt:
    """A load attempt that is In Progress for `run_id`: its history row and the rows to load."""

    control_key: str
    history_id: int
    run_id: str
    row: ControlRow
    source: SourceDbConfig


@dataclass(frozen=True)
class Refusal:
    """Why an attempt was not started. `taken_over_by` names the run that started it instead;
    `waiting`: the source's circuit breaker is open and the row went back to waiting (no failure)."""

    control_key: str
    reason: str
    taken_over_by: str | None = None
    waiting: bool = False


RecordStatus = Literal["succeeded", "failed", "not recorded"]


@dataclass(frozen=True)
class Recorded:
    """What `record_outcome` wrote."""

    status: RecordStatus
    detail: str


def begin_attempt(
    url: str,
    control_key: str,
    *,
    run_id: str,
    history_id: int | None,
    run_url: str | None = None,
    component: str = "lifecycle",
) -> Attempt | Refusal:
    """Mark the row In Progress for `run_id` and return the attempt, or a Refusal.

    Args:
        url: the control database.
        control_key: the row to load.
        run_id: the Dagster run id, or `local-…` for `dataloader load`.
        history_id: the Queued attempt a sensor opened; None for a load launched by hand, which is
            queued here first (or takes over the sensor's Queued attempt).
        run_url: link to the run in the UI.
        component: names the connection (`dataloader-<component>`).
    """
    with connect(url, component) as conn:
        row = get_control_row(conn, control_key)
        if row is None:
            return Refusal(control_key, f"{control_key}: no such control row in table_control")
        held = hold_back(conn, control_key, history_id) if history_id is not None else None
        if held is not None:
            return Refusal(control_key, held, waiting=True)
        if history_id is None:
            queued = queue_by_hand(conn, control_key)
            if queued is None and fail_dead_local_runs(conn, control_key):
                queued = queue_by_hand(conn, control_key)  # its `dataloader load` process was gone
            if queued is None:
                row = get_control_row(conn, control_key) or row
                hold = maintenance_hold(row)
                if hold is not None:  # maintenance holds it: say so, not the last load's run
                    return Refusal(control_key, f"{hold}; try again after it")
                return Refusal(
                    control_key,
                    f"{control_key}: cannot start: last_status is {row.last_status!r} "
                    f"(run {row.last_run_id} is loading it)",
                    taken_over_by=row.last_run_id,
                )
            history_id = queued.history_id
        started = mark_in_progress(conn, control_key, run_id=run_id, history_id=history_id, run_url=run_url)
        if started is None:
            return _refusal(conn, control_key, history_id)
        row = get_control_row(conn, control_key)
        source = get_source_config(conn, row.db_config_key) if row else None
    assert row is not None and source is not None  # db_config_key is a foreign key
    return Attempt(control_key, started, run_id, row, source)


def _refusal(conn: psycopg.Connection, control_key: str, history_id: int) -> Refusal:
    attempt = history_row(conn, history_id)
    row = get_control_row(conn, control_key)
    if attempt is not None and attempt.run_id and attempt.load_status != "Queued":
        return Refusal(
            control_key,
            f"{control_key}: attempt {history_id} was started by run {attempt.run_id} "
            f"(now {attempt.load_status}); nothing to do",
            taken_over_by=attempt.run_id,
        )
    status = row.last_status if row else None
    return Refusal(
        control_key,
        f"{control_key}: cannot start: last_status is {status!r} (attempt {history_id} is not Queued)",
    )


def record_outcome(
    url: str,
    attempt: Attempt,
    result: LoadResult,
    *,
    component: str = "lifecycle",
    patience_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Recorded:
    """Write the attempt's outcome on a fresh connection; retried with backoff while the control
    database is unreachable, for `patience_s` (default DATALOADER_OUTCOME_RETRY_S, 300 s).

    Succeeded: next cron fire, watermark, `load_full` cleared, backfill hand-over, retries reset,
    the result's status message (skip, failed checks). Failed: the error's message (capped), kind
    and code on the row and its history row.

    Raises:
        OutcomeNotRecorded when the budget ran out: the row stays In Progress for the run until its
        process has ended (then `dataloader load`/`reset` or the reconcile pass fails it).
    """
    pauses = retry_pauses(outcome_retry_seconds() if patience_s is None else patience_s)
    tries = 0
    while True:
        tries += 1
        try:
            with connect(url, component, connect_timeout=CONNECT_TIMEOUT_S) as conn, conn.transaction():
                return _record(conn, attempt, result)
        except psycopg.OperationalError as exc:  # connection cut or server restarting: try again
            pause = next(pauses, None)
            if pause is None:
                raise _not_recorded(attempt, result, tries, exc) from exc
            sleep(pause)


def _not_recorded(attempt: Attempt, result: LoadResult, tries: int, exc: Exception) -> OutcomeNotRecorded:
    error = result.error
    outcome = (
        f"the load succeeded (Delta version {result.delta_version})"
        if error is None
        else f"the load failed ({error.kind})"
    )
    return OutcomeNotRecorded(
        f"{attempt.control_key}: could not record the outcome of attempt {attempt.history_id} in {tries} "
        f"tries ({type(exc).__name__}); {outcome}. The row stays In Progress for run {attempt.run_id} "
        "until that run's process has ended: then the next `dataloader load` or `dataloader reset` "
        "of the row on this host, or the reconcile pass, fails it (run_lost) and the next load "
        "records a committed attempt Succeeded"
    )


def _record(conn: psycopg.Connection, attempt: Attempt, result: LoadResult) -> Recorded:
    error = result.error
    if error is None:
        if result.committed_by_run:
            mark_committed_attempt(conn, attempt.control_key, result.committed_by_run)
        updated = mark_succeeded(
            conn, attempt.control_key, history_id=attempt.history_id, run_id=attempt.run_id, result=result
        )
        if updated:
            note_outcome(conn, attempt.source.db_config_key, attempt.control_key, kind=None)
            return Recorded("succeeded", "Succeeded")
        return Recorded(
            "not recorded",
            f"the load committed (Delta version {result.delta_version}) but the row had moved on "
            "(a person or a retry changed it); the next load resumes from the Delta table",
        )
    failed = mark_failed(
        conn,
        attempt.control_key,
        message=error.message,
        kind=error.kind,
        code=error.code,
        history_id=attempt.history_id,
    )
    if failed:  # the source's circuit breaker counts it (and may send the row back to waiting)
        note_outcome(
            conn, attempt.source.db_config_key, attempt.control_key,
            kind=error.kind, code=error.code, message=error.message,
        )  # fmt: skip
        return Recorded("failed", error.message)
    return Recorded("not recorded", f"the row was no longer In Progress for this attempt: {error.message}")
