"""Questions the sensors and the CLI ask the control database (read-only, one SELECT each)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import psycopg
from psycopg.rows import class_row

from control_db.queries.rows import (
    ControlRow,
    HistoryRow,
    SourceDbConfig,
    TableStatus,
    column_list,
)

CONTROL_COLUMNS = column_list(ControlRow, "tc")
HISTORY_COLUMNS = column_list(HistoryRow, "hm")

# A row no live maintenance claim holds (SQL on `tc`; the claim is `queries.maintenance`'s).
NOT_HELD = "(tc.maintenance_owner IS NULL OR tc.maintenance_expires_at <= now())"
# The row is still Queued for attempt %(history_id)s (SQL on `tc`): that attempt's history row is
# open and Queued, so a row queued again since, or an attempt already closed, is left alone.
QUEUED_FOR_ATTEMPT = """tc.last_status = 'Queued'
      AND EXISTS (SELECT 1 FROM dataloader.historical_metadata AS h
                  WHERE h.id = %(history_id)s AND h.control_key = tc.control_key
                    AND h.load_status = 'Queued' AND h.load_end_time IS NULL)"""
# Ready = active, due, not already Queued / In Progress / Failed (NULL and Succeeded are ready), and
# not held for maintenance.
READY = f"""
    tc.is_active
    AND coalesce(tc.next_load_date_time, now()) <= now()
    AND (tc.last_status IS NULL OR tc.last_status NOT IN ('Queued', 'In Progress', 'Failed'))
    AND {NOT_HELD}
"""
READY_ORDER = "coalesce(tc.next_load_date_time, '-infinity'::timestamptz), tc.config_id"


def _control_rows(conn: psycopg.Connection, where: str, params: dict | None = None) -> list[ControlRow]:
    sql = f"SELECT {CONTROL_COLUMNS} FROM dataloader.table_control AS tc WHERE {where}"
    with conn.cursor(row_factory=class_row(ControlRow)) as cur:
        return cur.execute(sql, params or {}).fetchall()


def get_control_row(conn: psycopg.Connection, control_key: str) -> ControlRow | None:
    """The control row named `control_key`, or None."""
    rows = _control_rows(conn, "tc.control_key = %(key)s", {"key": control_key})
    return rows[0] if rows else None


def get_source_config(conn: psycopg.Connection, db_config_key: str) -> SourceDbConfig | None:
    """The source database `db_config_key`, or None."""
    with conn.cursor(row_factory=class_row(SourceDbConfig)) as cur:
        return cur.execute(
            "SELECT db_config_key, db_type, db_config_value, db_kv_scope "
            "FROM dataloader.table_control_dbconfig WHERE db_config_key = %s",
            (db_config_key,),
        ).fetchone()


def active_control_keys(conn: psycopg.Connection) -> list[str]:
    """The control_key of every active row, sorted (one index-only scan; no history is read)."""
    rows = conn.execute(
        "SELECT control_key FROM dataloader.table_control WHERE is_active ORDER BY control_key"
    ).fetchall()
    return [key for (key,) in rows]


def stuck_queued(conn: psycopg.Connection, older_than: timedelta) -> list[ControlRow]:
    """Rows Queued for longer than `older_than` (time of entering Queued: `status_changed_at`)."""
    return _stuck(conn, "Queued", older_than)


def stuck_running(conn: psycopg.Connection, older_than: timedelta) -> list[ControlRow]:
    """Rows In Progress for longer than `older_than`."""
    return _stuck(conn, "In Progress", older_than)


def _stuck(conn: psycopg.Connection, status: str, older_than: timedelta) -> list[ControlRow]:
    return _control_rows(
        conn,
        "tc.last_status = %(status)s "
        "AND tc.status_changed_at < now() - %(older_than)s "
        "ORDER BY tc.status_changed_at, tc.config_id",
        {"status": status, "older_than": older_than},
    )


def failed_retryable(conn: psycopg.Connection) -> list[ControlRow]:
    """Failed rows with retries left that are not waiting for a person (manual review)."""
    return _control_rows(
        conn,
        "tc.last_status = 'Failed' AND tc.retry_count < tc.max_retries AND NOT tc.manual_review "
        "ORDER BY tc.status_changed_at, tc.config_id",
    )


def landing_pending(conn: psycopg.Connection, limit: int | None = None) -> list[ControlRow]:
    """Rows loaded successfully at least once whose staging model is not written yet, oldest first.

    `limit` bounds the answer (a landing run's batch); None returns every pending row.
    """
    return _control_rows(
        conn,
        "NOT tc.staging_model_processed AND EXISTS (SELECT 1 FROM dataloader.historical_metadata AS hm "
        "WHERE hm.control_key = tc.control_key AND hm.load_status = 'Succeeded') "
        "ORDER BY tc.config_id LIMIT %(limit)s",
        {"limit": limit},
    )


def rows_of_run(conn: psycopg.Connection, run_id: str) -> list[ControlRow]:
    """Rows In Progress under run `run_id`."""
    return _control_rows(
        conn,
        "tc.last_status = 'In Progress' AND tc.last_run_id = %(run)s ORDER BY tc.config_id",
        {"run": run_id},
    )


def in_progress_rows(conn: psycopg.Connection) -> list[ControlRow]:
    """Rows In Progress (for reconciling against the runs that still exist)."""
    return _control_rows(conn, "tc.last_status = 'In Progress' ORDER BY tc.config_id")


def queued_attempts(conn: psycopg.Connection, older_than: timedelta) -> list[tuple[str, int]]:
    """(control_key, open Queued history id) of rows Queued for longer than `older_than`."""
    return conn.execute(
        "SELECT tc.control_key, max(hm.id) FROM dataloader.table_control AS tc "
        "JOIN dataloader.historical_metadata AS hm ON hm.control_key = tc.control_key "
        "AND hm.load_status = 'Queued' AND hm.load_end_time IS NULL "
        "WHERE tc.last_status = 'Queued' AND tc.status_changed_at < now() - %s "
        "GROUP BY tc.control_key ORDER BY tc.control_key",
        (older_than,),
    ).fetchall()


def open_history_rows(conn: psycopg.Connection) -> list[HistoryRow]:
    """Load attempts without a final status (Queued or In Progress, no end time), oldest first."""
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        return cur.execute(
            f"SELECT {HISTORY_COLUMNS} FROM dataloader.historical_metadata AS hm "
            "WHERE hm.load_end_time IS NULL AND hm.load_status IN ('Queued', 'In Progress') ORDER BY hm.id"
        ).fetchall()


def history_row(conn: psycopg.Connection, history_id: int) -> HistoryRow | None:
    """One load attempt by id, or None."""
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        return cur.execute(
            f"SELECT {HISTORY_COLUMNS} FROM dataloader.historical_metadata AS hm WHERE hm.id = %s",
            (history_id,),
        ).fetchone()


def history_rows(conn: psycopg.Connection, control_key: str) -> list[HistoryRow]:
    """All load attempts of `control_key`, oldest first."""
    with conn.cursor(row_factory=class_row(HistoryRow)) as cur:
        return cur.execute(
            f"SELECT {HISTORY_COLUMNS} FROM dataloader.historical_metadata AS hm "
            "WHERE hm.control_key = %s ORDER BY hm.id",
            (control_key,),
        ).fetchall()


def table_status(conn: psycopg.Connection) -> list[TableStatus]:
    """The rows of `dataloader.v_table_status`, by control_key."""
    columns = column_list(TableStatus, "v")
    with conn.cursor(row_factory=class_row(TableStatus)) as cur:
        return cur.execute(
            f"SELECT {columns} FROM dataloader.v_table_status AS v ORDER BY v.control_key"
        ).fetchall()


def active_rows(conn: psycopg.Connection) -> list[ControlRow]:
    """Every active control row, by control_key."""
    return _control_rows(conn, "tc.is_active ORDER BY tc.control_key")


_STORED_RULE_PROBLEMS = """
SELECT tc.control_key, 'table_control.' || p.column_name || ': ' || p.problem
FROM dataloader.table_control AS tc
CROSS JOIN LATERAL dataloader.table_control_value_problems(tc, NULL::dataloader.table_control) AS p
WHERE tc.control_key = ANY(%(keys)s)
UNION ALL
SELECT tc.control_key, 'table_control_dbconfig.' || p.column_name || ': ' || p.problem
FROM dataloader.table_control AS tc
JOIN dataloader.table_control_dbconfig AS s ON s.db_config_key = tc.db_config_key
CROSS JOIN LATERAL dataloader.dbconfig_value_problems(s, NULL::dataloader.table_control_dbconfig) AS p
WHERE tc.control_key = ANY(%(keys)s)
UNION ALL
SELECT tc.control_key, 'table_control.destination_table: ' || p
FROM dataloader.table_control AS tc
CROSS JOIN LATERAL dataloader.destination_table_problems(tc.config_id, tc.control_key, tc.destination_table) AS p
WHERE tc.control_key = ANY(%(keys)s)
"""


def stored_rule_problems(conn: psycopg.Connection, control_keys: Sequence[str]) -> dict[str, list[str]]:
    """The INSERT/UPDATE rules stored rows break (rows stored before migrations 0003 and 0006, or with
    the triggers disabled): control_key -> `table.column: rule` lines, for the row and its source config."""
    problems: dict[str, list[str]] = {}
    for key, problem in conn.execute(_STORED_RULE_PROBLEMS, {"keys": list(control_keys)}).fetchall():
        problems.setdefault(key, []).append(problem)
    return problems
