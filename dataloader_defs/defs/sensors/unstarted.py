"""A queued attempt whose Dagster run ended (failed, cancelled, gone) before the load started.

Not a failed load: the row goes back to its queue without using a retry (control_db.queries.requeue),
so a busy orchestrator that could not dequeue or start a run in time pages nobody. Only after
DATALOADER_UNSTARTED_REQUEUES such attempts in a row is the row failed (transient, with `code`), so a
run that can never start (a broken code location) still surfaces instead of looping.
"""

from __future__ import annotations

from typing import Literal

import psycopg

from dataloader_defs.defs.settings import env_int

Outcome = Literal["requeued", "failed", "unchanged"]


def requeue_or_fail(
    conn: psycopg.Connection,
    control_key: str,
    *,
    history_id: int,
    message: str,
    code: str,
    run_id: str | None = None,
) -> Outcome:
    """Requeue attempt `history_id` of `control_key` (its run ended before the load started), or fail it
    when the row's unstarted attempts reached the limit; "unchanged" when the attempt is no longer its
    open Queued one (another pass, or the run itself, got there first). `run_id`: the run it was
    queued for, when known (kept on the attempt's history row)."""
    from control_db import queries

    limit = env_int("DATALOADER_UNSTARTED_REQUEUES")
    if queries.unstarted_in_a_row(conn, control_key) < limit:
        requeued = queries.requeue_unstarted(
            conn,
            control_key,
            history_id=history_id,
            message=f"requeued (no retry used): {message}",
            run_id=run_id,
        )
        return "requeued" if requeued else "unchanged"
    message = f"{message} ({limit} attempts in a row ended before the load started)"
    failed = queries.mark_failed(
        conn,
        control_key,
        message=message,
        kind="transient",
        code=code,
        history_id=history_id,
        run_id=run_id,
        queued_only=True,
    )
    return "failed" if failed else "unchanged"
