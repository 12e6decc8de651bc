"""Queued -> ready again: an attempt whose run ended before the load started is no failed load.

Under load Dagster may fail or cancel a queued run before it starts (a dequeue that missed its gRPC
deadline, a run worker that did not come up within the start timeout). The load never began, so the
row goes back to its queue — due at once, `retry_count` untouched, the reason in its message — and
never becomes Failed: no retry is used, nothing reaches manual review. The attempt's history row is
closed with code `not_started` (no start time), so the trail stays complete.

A row whose attempts keep ending unstarted is not requeued forever: after `limit` in a row (since
the row's last attempt that started) the caller fails it the usual way.
"""

from __future__ import annotations

import psycopg

from control_db.queries.reads import QUEUED_FOR_ATTEMPT
from dataloader_contract.result import MAX_MESSAGE

NOT_STARTED = "not_started"
REQUEUE_REASON = "requeued without using a retry: the load never started"

_UNSTARTED_IN_A_ROW = """
SELECT count(*) FROM dataloader.historical_metadata AS hm
WHERE hm.control_key = %(key)s AND hm.error_code = %(code)s
  AND hm.id > coalesce((SELECT max(s.id) FROM dataloader.historical_metadata AS s
                        WHERE s.control_key = %(key)s AND s.load_start_time IS NOT NULL), 0)
"""

_REQUEUE = f"""
WITH requeued AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = NULL, status_changed_at = now(), last_status_message = %(message)s,
        next_load_date_time = least(coalesce(tc.next_load_date_time, now()), now())
    WHERE tc.control_key = %(key)s AND {QUEUED_FOR_ATTEMPT}
    RETURNING tc.control_key
),
closed AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Failed', load_end_time = now(), error_message = %(message)s,
        error_kind = 'transient', error_code = %(code)s, retry_decision = 'retry', retry_reason = %(reason)s,
        run_id = coalesce(%(run_id)s, hm.run_id)
    FROM requeued
    WHERE hm.id = %(history_id)s AND hm.control_key = requeued.control_key
)
SELECT count(*) FROM requeued
"""


def unstarted_in_a_row(conn: psycopg.Connection, control_key: str) -> int:
    """How many of the row's attempts since its last started one were requeued unstarted."""
    row = conn.execute(_UNSTARTED_IN_A_ROW, {"key": control_key, "code": NOT_STARTED}).fetchone()
    return int(row[0]) if row else 0


def requeue_unstarted(
    conn: psycopg.Connection, control_key: str, *, history_id: int, message: str, run_id: str | None = None
) -> bool:
    """Queued attempt `history_id`, whose run ended before starting the load -> the row ready again.

    Guarded like every transition: only while the row is Queued and `history_id` is its open Queued
    attempt (a run that started it, or another pass that requeued or failed it, wins). `run_id`: the
    run the attempt was queued for, kept on its history row. Returns whether the row was requeued.
    """
    params = {
        "key": control_key,
        "history_id": history_id,
        "message": message[:MAX_MESSAGE],
        "code": NOT_STARTED,
        "reason": REQUEUE_REASON,
        "run_id": run_id,
    }
    row = conn.execute(_REQUEUE, params).fetchone()
    return bool(row and row[0])
