"""Status transitions of table_control (DESIGN §3): each one guarded SQL statement.

Every transition names the state it expects in its WHERE clause (`… AND last_status = 'Queued'`) or
locks with `FOR UPDATE SKIP LOCKED`, and returns False/None when the guard did not match, so two
sensor ticks or two daemons can never move the same row twice. History rows
(`historical_metadata`) are opened and closed by the same statement, in data-modifying CTEs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import psycopg
from psycopg.rows import class_row

from control_db.queries.circuit import QUEUE_ALLOWED, choose_probes
from control_db.queries.reads import NOT_HELD, READY, READY_ORDER
from control_db.queries.rows import QueuedLoad
from control_db.schedule import next_fire
from dataloader_contract.result import MAX_MESSAGE, LoadResult

# pg_advisory_xact_lock key serialising queue_ready_tables: the "one chunked_backfill per source"
# rule reads other rows, which a statement snapshot taken before a concurrent commit would miss.
QUEUE_LOCK_ID = 7_240_431_002

# The end of a queuing statement whose `queued` CTE (an UPDATE to 'Queued') is still open: it returns
# the queued rows, opens a Queued history row for each and selects them as QueuedLoad rows.
_OPEN_QUEUED = """    RETURNING tc.config_id, tc.control_key, tc.db_config_key, tc.load_strategy, tc.incremental_value
),
opened AS (
    INSERT INTO dataloader.historical_metadata
        (control_key, config_id, load_strategy, load_queued_time, load_status, watermark_before)
    SELECT q.control_key, q.config_id, q.load_strategy, now(), 'Queued', q.incremental_value FROM queued AS q
    RETURNING id, config_id
)
SELECT q.control_key, q.config_id, q.db_config_key, q.load_strategy, o.id AS history_id
FROM queued AS q JOIN opened AS o USING (config_id)"""

# Queuing a row starts a new attempt: the previous run's id, link and message no longer describe it
# (the run that starts the attempt sets its own; a monitor that fails it names the run it knows of).
QUEUED = (
    "last_status = 'Queued', status_changed_at = now(), last_run_id = NULL, last_run_url = NULL, "
    "last_status_message = NULL"
)

_QUEUE = f"""
WITH busy_sources AS (
    SELECT DISTINCT db_config_key FROM dataloader.table_control
    WHERE load_strategy = 'chunked_backfill' AND last_status IN ('Queued', 'In Progress')
),
first_backfills AS (
    SELECT DISTINCT ON (tc.db_config_key) tc.config_id
    FROM dataloader.table_control AS tc
    WHERE {READY} AND tc.load_strategy = 'chunked_backfill' AND {QUEUE_ALLOWED}
      AND (%(keys)s::text[] IS NULL OR tc.control_key = ANY(%(keys)s::text[]))
      AND tc.db_config_key NOT IN (SELECT db_config_key FROM busy_sources)
    ORDER BY tc.db_config_key, {READY_ORDER}
),
-- LIMIT over FOR UPDATE SKIP LOCKED: rows are locked one by one in due order until `limit` are held,
-- so only the picked rows are locked, and a row someone else holds is passed over, not waited for.
-- (The advisory lock keeps two queuing transactions apart.)
picked AS (
    SELECT tc.config_id
    FROM dataloader.table_control AS tc
    WHERE {READY} AND {QUEUE_ALLOWED} AND (%(keys)s::text[] IS NULL OR tc.control_key = ANY(%(keys)s::text[]))
      AND (tc.load_strategy <> 'chunked_backfill' OR tc.config_id IN (SELECT config_id FROM first_backfills))
    ORDER BY {READY_ORDER}
    LIMIT %(limit)s
    FOR UPDATE OF tc SKIP LOCKED
),
queued AS (
    UPDATE dataloader.table_control AS tc
    SET {QUEUED}
    FROM picked
    WHERE tc.config_id = picked.config_id
{_OPEN_QUEUED}
ORDER BY o.id
"""


def queue_ready_tables(
    conn: psycopg.Connection, *, limit: int, only_keys: Sequence[str] | None = None
) -> list[QueuedLoad]:
    """Queue up to `limit` ready tables (among `only_keys` when given: the tables the code location
    has assets for) and open a Queued history row for each.

    At most one chunked_backfill per source database is queued, and none for a source that already
    has one Queued or In Progress. Only the queued rows are locked; a ready row someone else holds
    locked is passed over this time. Called inside an open transaction, the row and advisory locks
    last until that transaction ends.

    A source whose circuit breaker is open has none of its tables queued; once its cool-down is
    over, one probe table is (`queries.circuit`).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK_ID,))
        keys = list(only_keys) if only_keys is not None else None
        choose_probes(conn, keys)
        with conn.cursor(row_factory=class_row(QueuedLoad)) as cur:
            return cur.execute(_QUEUE, {"limit": limit, "keys": keys}).fetchall()


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

_QUEUE_BY_HAND = f"""
WITH queued AS (
    UPDATE dataloader.table_control AS tc
    SET {QUEUED}
    WHERE tc.control_key = %(key)s
      AND (tc.last_status IS NULL OR tc.last_status IN ('Succeeded', 'Failed')) AND {NOT_HELD}
{_OPEN_QUEUED}
UNION ALL
SELECT tc.control_key, tc.config_id, tc.db_config_key, tc.load_strategy, hm.id
FROM dataloader.table_control AS tc
JOIN dataloader.historical_metadata AS hm ON hm.control_key = tc.control_key
WHERE tc.control_key = %(key)s AND tc.last_status = 'Queued'
  AND hm.load_status = 'Queued' AND hm.load_end_time IS NULL
  AND NOT EXISTS (SELECT 1 FROM queued)
"""


def queue_by_hand(conn: psycopg.Connection, control_key: str) -> QueuedLoad | None:
    """Queue one table for a load launched by hand (UI or `dataloader load`), like the sensor does.

    A row that is NULL/Succeeded/Failed becomes Queued with a new Queued history row. A row the
    sensor already queued is taken as it is: its open Queued attempt is returned, so the hand load
    takes that attempt over (the sensor's run then finds it started and exits quietly). None for a
    row that is In Progress, held for maintenance, or does not exist.
    """
    with conn.cursor(row_factory=class_row(QueuedLoad)) as cur:
        rows = cur.execute(_QUEUE_BY_HAND, {"key": control_key}).fetchall()
    return max(rows, key=lambda r: r.history_id) if rows else None


def mark_in_progress(
    conn: psycopg.Connection,
    control_key: str,
    *,
    run_id: str,
    history_id: int,
    run_url: str | None = None,
) -> int | None:
    """Queued -> In Progress for run `run_id` on the Queued attempt `history_id`; its id, or None if refused.

    Refused when the row is no longer Queued or `history_id` is not its open Queued attempt (another
    run started it, a monitor failed it): the caller must not load.
    """
    params = {"key": control_key, "run_id": run_id, "run_url": run_url, "history_id": history_id}
    row = conn.execute(_START_QUEUED, params).fetchone()
    return row[0] if row else None


_SCHEDULE = "SELECT cron, cron_timezone, now() FROM dataloader.table_control WHERE control_key = %s"

_SUCCEED = """
WITH done AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'Succeeded', status_changed_at = now(), last_status_message = %(message)s,
        last_rows_processed = %(rows)s, retry_count = 0, manual_review = false, manual_review_reason = NULL,
        last_error_kind = NULL, last_error_code = NULL,
        next_load_date_time = %(next_fire)s,
        incremental_value = coalesce(%(watermark_after)s, tc.incremental_value),
        load_strategy = coalesce(%(next_load_strategy)s, tc.load_strategy),
        load_full = CASE WHEN %(clear_load_full)s THEN false ELSE tc.load_full END,
        last_delete_check_at = CASE WHEN %(rows_deleted)s::bigint IS NULL THEN tc.last_delete_check_at
                                    ELSE now() END
    WHERE tc.control_key = %(key)s AND tc.last_run_id = %(run_id)s
      AND (tc.last_status = 'In Progress' OR (tc.last_status = 'Failed' AND NOT tc.manual_review))
    RETURNING tc.control_key
),
closed AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Succeeded', load_end_time = coalesce(hm.load_end_time, now()),
        rows_processed = %(rows)s, watermark_before = %(watermark_before)s,
        watermark_after = %(watermark_after)s, error_message = NULL, error_kind = NULL, error_code = NULL,
        rows_deleted = %(rows_deleted)s
    WHERE hm.id = %(history_id)s AND hm.control_key = %(key)s AND hm.run_id = %(run_id)s
    RETURNING hm.id
)
SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM closed)
"""


def mark_succeeded(
    conn: psycopg.Connection, control_key: str, *, history_id: int, run_id: str, result: LoadResult
) -> bool:
    """In Progress -> Succeeded as `result` says: schedule the next cron fire, reset retries, store the
    watermark.

    From the result: `rows_read` (rows processed), `watermark_before/after` (`watermark_after=None`
    keeps the stored watermark), `next_load_strategy` (a finished chunked_backfill hands over to
    `incremental`), `load_full_done` (clears the one-off full reload), `rows_deleted` (None = the
    load ran no delete reconciliation; when set it also stamps the row's `last_delete_check_at`) and
    `status_message` (capped at MAX_MESSAGE). The history row `history_id` is closed with rows and
    watermarks. A row that a monitor failed while this very run (`run_id`) was committing is still
    recorded Succeeded (a committed load is never reported Failed), unless a person took it into
    manual review meanwhile; the attempt's history row says Succeeded either way. Returns whether
    the control row was updated.
    """
    if result.error is not None or result.control_key != control_key:
        raise ValueError(
            f"{control_key}: mark_succeeded needs a successful LoadResult of this table, "
            f"got {result.control_key}'s ({'failed' if result.error else 'succeeded'})"
        )
    schedule = conn.execute(_SCHEDULE, (control_key,)).fetchone()
    if schedule is None:
        return False
    cron, timezone, now = schedule
    params = {
        "key": control_key,
        "history_id": history_id,
        "run_id": run_id,
        "rows": result.rows_read,
        "watermark_before": result.watermark_before,
        "watermark_after": result.watermark_after,
        "next_load_strategy": result.next_load_strategy,
        "clear_load_full": result.load_full_done,
        "message": (result.status_message or None) and result.status_message[:MAX_MESSAGE],
        "rows_deleted": result.rows_deleted,
        "next_fire": next_fire(cron, timezone, now),
    }
    row = conn.execute(_SUCCEED, params).fetchone()
    return bool(row and row[0])


_FAIL = """
WITH failed AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'Failed', status_changed_at = now(), last_status_message = %(message)s,
        last_error_kind = %(kind)s, last_error_code = %(code)s,
        manual_review = false, manual_review_reason = NULL
    WHERE tc.control_key = %(key)s AND tc.last_status IN ('Queued', 'In Progress')
      AND (NOT %(queued_only)s OR tc.last_status = 'Queued')
      AND (%(history_id)s::bigint IS NULL OR EXISTS (
            SELECT 1 FROM dataloader.historical_metadata AS h
            WHERE h.id = %(history_id)s::bigint AND h.control_key = tc.control_key
              AND h.load_end_time IS NULL AND h.load_status IN ('Queued', 'In Progress')
              AND (NOT %(queued_only)s OR h.load_status = 'Queued')))
    RETURNING tc.control_key
),
closed AS (
    UPDATE dataloader.historical_metadata AS hm
    SET load_status = 'Failed', load_end_time = now(), error_message = %(message)s,
        error_kind = %(kind)s, error_code = %(code)s, run_id = coalesce(hm.run_id, %(run_id)s)
    FROM failed
    WHERE hm.control_key = failed.control_key AND hm.load_end_time IS NULL
      AND hm.load_status IN ('Queued', 'In Progress')
      AND (%(history_id)s::bigint IS NULL OR hm.id = %(history_id)s::bigint)
)
SELECT count(*) FROM failed
"""


def mark_failed(
    conn: psycopg.Connection,
    control_key: str,
    *,
    message: str,
    kind: str | None,
    code: str | None = None,
    history_id: int | None = None,
    run_id: str | None = None,
    queued_only: bool = False,
) -> bool:
    """Queued/In Progress -> Failed with `message` and the error's `kind`/`code` (what the retry
    analysis decides from). With `history_id`, only while that attempt is still open (a late report
    of an older attempt changes nothing); closes it, or every open attempt without `history_id`.

    `run_id`: the run the failure is about, when known (the run a Queued attempt was queued for):
    recorded on the history row when it names no run yet (the control row's `last_run_id` stays the
    run that started a load, if any). `queued_only`:
    only while the row and the attempt `history_id` are still Queued (no run started it)."""
    if queued_only and history_id is None:
        raise ValueError(f"{control_key}: mark_failed(queued_only=True) needs the attempt's history_id")
    params = {
        "key": control_key,
        "message": message[:MAX_MESSAGE],
        "kind": kind,
        "code": code,
        "history_id": history_id,
        "run_id": run_id,
        "queued_only": queued_only,
    }
    row = conn.execute(_FAIL, params).fetchone()
    return bool(row and row[0])


def _decided(decision: str, moved: str) -> str:
    """The end of a retry-analysis statement whose CTE `moved` returns the row it changed: record
    `decision` and `%(reason)s` on that row's latest history row; select how many rows moved."""
    return f"""decided AS (
    UPDATE dataloader.historical_metadata AS hm
    SET retry_decision = '{decision}', retry_reason = %(reason)s
    WHERE hm.id = (SELECT max(h.id) FROM dataloader.historical_metadata AS h
                   JOIN {moved} ON h.control_key = {moved}.control_key)
)
SELECT count(*) FROM {moved}
"""


_RETRY = """
WITH retried AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = NULL, status_changed_at = now(), retry_count = tc.retry_count + 1,
        next_load_date_time = now() + %(backoff)s,
        last_status_message = format('retry %%s of %%s in %%ss: %%s', tc.retry_count + 1, tc.max_retries,
                                     extract(epoch FROM %(backoff)s::interval)::bigint, %(reason)s::text)
    WHERE tc.control_key = %(key)s AND tc.last_status = 'Failed' AND tc.retry_count < tc.max_retries
      AND NOT tc.manual_review
    RETURNING tc.control_key
),
""" + _decided("retry", "retried")


def reset_for_retry(conn: psycopg.Connection, control_key: str, *, backoff: timedelta, reason: str) -> bool:
    """Failed (retries left, not in manual review) -> NULL, retry_count+1, due again after `backoff`.

    The row's message says `retry <n> of <max> in <seconds>s: <reason>` (so `reason` should say why,
    not repeat the schedule); the decision and `reason` are written to the latest history row.
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
""" + _decided("manual_review", "reviewed")


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


def mark_committed_attempt(conn: psycopg.Connection, control_key: str, run_id: str) -> int:
    """A later load found run `run_id`'s Delta commit: that run's attempt, whatever it was recorded
    as (Failed when the run died after committing and a monitor failed it; In Progress when its
    outcome could not be written), becomes Succeeded and is closed, with a note saying what it was.
    Returns the number of history rows corrected."""
    cur = conn.execute(
        "UPDATE dataloader.historical_metadata SET load_status = 'Succeeded', "
        "load_end_time = coalesce(load_end_time, now()), "
        "error_message = 'committed to Delta, then the run ended before recording it; corrected by the "
        "next load (was: ' || load_status || coalesce(': ' || error_message, '') || ')' "
        "WHERE control_key = %s AND run_id = %s AND load_status <> 'Succeeded'",
        (control_key, run_id),
    )
    return cur.rowcount


def close_history_row(conn: psycopg.Connection, history_id: int, *, message: str) -> bool:
    """Close an open (Queued/In Progress) history row as Failed with `message` (reconcile pass)."""
    cur = conn.execute(
        "UPDATE dataloader.historical_metadata SET load_status = 'Failed', load_end_time = now(), "
        "error_message = %s WHERE id = %s AND load_end_time IS NULL AND load_status IN ('Queued', 'In Progress')",
        (message, history_id),
    )
    return cur.rowcount == 1
