"""Status transitions of table_control (DESIGN §3): each one guarded SQL statement.

Every transition names the state it expects in its WHERE clause (`… AND last_status = 'Queued'`) or
locks with `FOR UPDATE SKIP LOCKED`, and returns False/None when the guard did not match, so two
sensor ticks or two daemons can never move the same row twice. History rows
(`historical_metadata`) are opened and closed by the same statement, in data-modifying CTEs.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg.rows import class_row

from control_db.queries.reads import READY, READY_ORDER
from control_db.queries.rows import QueuedLoad
from control_db.schedule import next_fire

# pg_advisory_xact_lock key serialising queue_ready_tables: the "one chunked_backfill per source"
# rule reads other rows, which a statement snapshot taken before a concurrent commit would miss.
QUEUE_LOCK_ID = 7_240_431_002

_QUEUE = f"""
WITH busy_sources AS (
    SELECT DISTINCT db_config_key FROM dataloader.table_control
    WHERE load_strategy = 'chunked_backfill' AND last_status IN ('Queued', 'In Progress')
),
candidates AS (
    SELECT tc.config_id, tc.db_config_key, tc.load_strategy,
           coalesce(tc.next_load_date_time, '-infinity'::timestamptz) AS due
    FROM dataloader.table_control AS tc
    WHERE {READY}
    ORDER BY {READY_ORDER}
    FOR UPDATE SKIP LOCKED
),
ranked AS (
    SELECT c.config_id, c.due, c.load_strategy, c.db_config_key,
           row_number() OVER (PARTITION BY c.db_config_key, c.load_strategy = 'chunked_backfill'
                              ORDER BY c.due, c.config_id) AS rank_in_source
    FROM candidates AS c
),
picked AS (
    SELECT r.config_id FROM ranked AS r
    WHERE r.load_strategy <> 'chunked_backfill'
       OR (r.rank_in_source = 1 AND r.db_config_key NOT IN (SELECT db_config_key FROM busy_sources))
    ORDER BY r.due, r.config_id
    LIMIT %(limit)s
),
queued AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'Queued', status_changed_at = now()
    FROM picked
    WHERE tc.config_id = picked.config_id
    RETURNING tc.config_id, tc.control_key, tc.db_config_key, tc.load_strategy, tc.incremental_value
),
opened AS (
    INSERT INTO dataloader.historical_metadata
        (control_key, config_id, load_strategy, load_queued_time, load_status, watermark_before)
    SELECT q.control_key, q.config_id, q.load_strategy, now(), 'Queued', q.incremental_value FROM queued AS q
    RETURNING id, config_id
)
SELECT q.control_key, q.config_id, q.db_config_key, q.load_strategy, o.id AS history_id
FROM queued AS q JOIN opened AS o USING (config_id)
ORDER BY o.id
"""


def queue_ready_tables(conn: psycopg.Connection, *, limit: int) -> list[QueuedLoad]:
    """Queue up to `limit` ready tables and open a Queued history row for each.

    At most one chunked_backfill per source database is queued, and none for a source that already
    has one Queued or In Progress.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK_ID,))
        with conn.cursor(row_factory=class_row(QueuedLoad)) as cur:
            return cur.execute(_QUEUE, {"limit": limit}).fetchall()


_START_QUEUED = """
WITH started AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'In Progress', status_changed_at = now(), last_run_id = %(run_id)s,
        last_run_url = %(run_url)s
    WHERE tc.control_key = %(key)s AND tc.last_status = 'Queued'
      AND EXISTS (SELECT 1 FROM dataloader.historical_metadata AS hm
                  WHERE hm.id = %(history_id)s AND hm.control_key = tc.control_key AND hm.load_status = 'Queued')
    RETURNING tc.control_key
)
UPDATE dataloader.historical_metadata AS hm
SET load_status = 'In Progress', load_start_time = now(), run_id = %(run_id)s
FROM started
WHERE hm.id = %(history_id)s AND hm.control_key = started.control_key
RETURNING hm.id
"""

_START_BY_HAND = """
WITH started AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'In Progress', status_changed_at = now(), last_run_id = %(run_id)s,
        last_run_url = %(run_url)s
    WHERE tc.control_key = %(key)s
      AND (tc.last_status IS NULL OR tc.last_status IN ('Queued', 'Succeeded', 'Failed'))
    RETURNING tc.control_key, tc.config_id, tc.load_strategy, tc.incremental_value
),
superseded AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Failed', load_end_time = now(), error_message = 'superseded by a hand-launched run'
    FROM started
    WHERE hm.control_key = started.control_key AND hm.load_status = 'Queued' AND hm.load_end_time IS NULL
)
INSERT INTO dataloader.historical_metadata
    (control_key, config_id, run_id, load_strategy, load_start_time, load_status, watermark_before)
SELECT s.control_key, s.config_id, %(run_id)s, s.load_strategy, now(), 'In Progress', s.incremental_value
FROM started AS s
RETURNING id
"""


def mark_in_progress(
    conn: psycopg.Connection,
    control_key: str,
    *,
    run_id: str,
    history_id: int | None = None,
    run_url: str | None = None,
) -> int | None:
    """Mark the row In Progress for Dagster run `run_id`; return the history id, or None if refused.

    With `history_id` (a sensor-queued load) the row must be Queued and the history row must belong to
    it. With `history_id=None` (a run launched by hand) the row may be NULL/Queued/Succeeded/Failed;
    a new history row is opened (and a Queued one it supersedes is closed).
    """
    params = {"key": control_key, "run_id": run_id, "run_url": run_url, "history_id": history_id}
    row = conn.execute(_START_BY_HAND if history_id is None else _START_QUEUED, params).fetchone()
    return row[0] if row else None


_SCHEDULE = "SELECT cron, cron_timezone, now() FROM dataloader.table_control WHERE control_key = %s"

_SUCCEED = """
WITH done AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'Succeeded', status_changed_at = now(), last_status_message = %(message)s,
        last_rows_processed = %(rows)s, retry_count = 0, manual_review = false, manual_review_reason = NULL,
        next_load_date_time = %(next_fire)s,
        incremental_value = coalesce(%(watermark_after)s, tc.incremental_value),
        load_strategy = coalesce(%(next_load_strategy)s, tc.load_strategy),
        load_full = CASE WHEN %(clear_load_full)s THEN false ELSE tc.load_full END,
        last_delete_check_at = CASE WHEN %(rows_deleted)s::bigint IS NULL THEN tc.last_delete_check_at
                                    ELSE now() END
    WHERE tc.control_key = %(key)s AND tc.last_status = 'In Progress'
    RETURNING tc.control_key
),
closed AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Succeeded', load_end_time = now(), rows_processed = %(rows)s,
        watermark_before = %(watermark_before)s, watermark_after = %(watermark_after)s,
        rows_deleted = %(rows_deleted)s
    FROM done
    WHERE hm.id = %(history_id)s AND hm.control_key = done.control_key
)
SELECT count(*) FROM done
"""


def mark_succeeded(
    conn: psycopg.Connection,
    control_key: str,
    *,
    history_id: int,
    rows_processed: int,
    watermark_before: str | None,
    watermark_after: str | None,
    next_load_strategy: str | None = None,
    clear_load_full: bool = False,
    message: str | None = None,
    rows_deleted: int | None = None,
) -> bool:
    """In Progress -> Succeeded: schedule the next cron fire, reset retries, store the watermark.

    `watermark_after=None` keeps the stored watermark; `next_load_strategy` hands a finished
    chunked_backfill over (`incremental`); `clear_load_full` clears the one-off full reload;
    `rows_deleted` (None = the load ran no delete reconciliation) goes to the history row and, when
    set, stamps the row's `last_delete_check_at`. The history row `history_id` is closed with rows
    and watermarks.
    """
    schedule = conn.execute(_SCHEDULE, (control_key,)).fetchone()
    if schedule is None:
        return False
    cron, timezone, now = schedule
    params = {
        "key": control_key,
        "history_id": history_id,
        "rows": rows_processed,
        "watermark_before": watermark_before,
        "watermark_after": watermark_after,
        "next_load_strategy": next_load_strategy,
        "clear_load_full": clear_load_full,
        "message": message,
        "rows_deleted": rows_deleted,
        "next_fire": next_fire(cron, timezone, now),
    }
    row = conn.execute(_SUCCEED, params).fetchone()
    return bool(row and row[0])


_FAIL = """
WITH failed AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'Failed', status_changed_at = now(), last_status_message = %(message)s,
        manual_review = false, manual_review_reason = NULL
    WHERE tc.control_key = %(key)s AND tc.last_status IN ('Queued', 'In Progress')
    RETURNING tc.control_key
),
closed AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Failed', load_end_time = now(), error_message = %(message)s
    FROM failed
    WHERE hm.control_key = failed.control_key AND hm.load_end_time IS NULL
      AND hm.load_status IN ('Queued', 'In Progress')
      AND (%(history_id)s::bigint IS NULL OR hm.id = %(history_id)s::bigint)
)
SELECT count(*) FROM failed
"""


def mark_failed(
    conn: psycopg.Connection, control_key: str, *, message: str, history_id: int | None = None
) -> bool:
    """Queued/In Progress -> Failed with `message`; closes history row `history_id` (default: every open one)."""
    row = conn.execute(_FAIL, {"key": control_key, "message": message, "history_id": history_id}).fetchone()
    return bool(row and row[0])


_RETRY = """
WITH retried AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = NULL, status_changed_at = now(), retry_count = tc.retry_count + 1,
        next_load_date_time = now() + %(backoff)s,
        last_status_message = format('retry %%s of %%s after %%s: %%s',
                                     tc.retry_count + 1, tc.max_retries, %(backoff)s::interval, %(reason)s::text)
    WHERE tc.control_key = %(key)s AND tc.last_status = 'Failed' AND tc.retry_count < tc.max_retries
      AND NOT tc.manual_review
    RETURNING tc.control_key
),
decided AS (
    UPDATE dataloader.historical_metadata AS hm
    SET retry_decision = 'retry', retry_reason = %(reason)s
    WHERE hm.id = (SELECT max(h.id) FROM dataloader.historical_metadata AS h
                   JOIN retried ON h.control_key = retried.control_key)
)
SELECT count(*) FROM retried
"""


def reset_for_retry(conn: psycopg.Connection, control_key: str, *, backoff: timedelta, reason: str) -> bool:
    """Failed (retries left, not in manual review) -> NULL, retry_count+1, due again after `backoff`.

    The decision and `reason` are written to the latest history row of the table.
    """
    row = conn.execute(_RETRY, {"key": control_key, "backoff": backoff, "reason": reason}).fetchone()
    return bool(row and row[0])


_MANUAL_REVIEW = """
WITH reviewed AS (
    UPDATE dataloader.table_control AS tc
    SET manual_review = true, manual_review_reason = %(reason)s
    WHERE tc.control_key = %(key)s AND tc.last_status = 'Failed' AND NOT tc.manual_review
    RETURNING tc.control_key
),
decided AS (
    UPDATE dataloader.historical_metadata AS hm
    SET retry_decision = 'manual_review', retry_reason = %(reason)s
    WHERE hm.id = (SELECT max(h.id) FROM dataloader.historical_metadata AS h
                   JOIN reviewed ON h.control_key = reviewed.control_key)
)
SELECT count(*) FROM reviewed
"""


def mark_manual_review(conn: psycopg.Connection, control_key: str, *, reason: str) -> bool:
    """Failed -> Failed awaiting a person: `manual_review` set, `reason` on the row and the latest history row."""
    row = conn.execute(_MANUAL_REVIEW, {"key": control_key, "reason": reason}).fetchone()
    return bool(row and row[0])


def mark_staging_processed(conn: psycopg.Connection, control_key: str) -> bool:
    """Set `staging_model_processed` (guard: not set yet)."""
    cur = conn.execute(
        "UPDATE dataloader.table_control SET staging_model_processed = true "
        "WHERE control_key = %s AND NOT staging_model_processed",
        (control_key,),
    )
    return cur.rowcount == 1


_RECORD_RUN = """
WITH attempt AS (
    UPDATE dataloader.historical_metadata AS hm
    SET run_id = %(run_id)s
    WHERE hm.id = %(history_id)s AND hm.control_key = %(key)s
    RETURNING hm.control_key
),
control AS (
    UPDATE dataloader.table_control AS tc
    SET last_run_id = %(run_id)s, last_run_url = %(run_url)s
    FROM attempt
    WHERE tc.control_key = attempt.control_key
    RETURNING tc.control_key
)
SELECT count(*) FROM control
"""


def record_run_id(
    conn: psycopg.Connection, control_key: str, history_id: int, run_id: str, *, run_url: str | None = None
) -> bool:
    """Store Dagster `run_id` (and its UI link) on history row `history_id` and on the control row."""
    params = {"key": control_key, "history_id": history_id, "run_id": run_id, "run_url": run_url}
    row = conn.execute(_RECORD_RUN, params).fetchone()
    return bool(row and row[0])


def close_history_row(conn: psycopg.Connection, history_id: int, *, message: str) -> bool:
    """Close an open (Queued/In Progress) history row as Failed with `message` (reconcile pass)."""
    cur = conn.execute(
        "UPDATE dataloader.historical_metadata SET load_status = 'Failed', load_end_time = now(), "
        "error_message = %s WHERE id = %s AND load_end_time IS NULL AND load_status IN ('Queued', 'In Progress')",
        (message, history_id),
    )
    return cur.rowcount == 1
