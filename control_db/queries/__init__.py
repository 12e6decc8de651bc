"""Typed queries and status transitions on the control database (psycopg 3, Connection first)."""

from control_db.queries.connection import connect
from control_db.queries.reads import (
    active_control_keys,
    failed_retryable,
    get_control_row,
    get_source_config,
    history_rows,
    in_progress_rows,
    landing_pending,
    open_history_rows,
    ready_tables,
    stuck_queued,
    stuck_running,
    table_status,
)
from control_db.queries.rows import ControlRow, HistoryRow, QueuedLoad, SourceDbConfig, TableStatus
from control_db.queries.transitions import (
    close_history_row,
    mark_failed,
    mark_in_progress,
    mark_manual_review,
    mark_staging_processed,
    mark_succeeded,
    queue_ready_tables,
    record_run_id,
    reset_for_retry,
)

__all__ = [
    "ControlRow",
    "HistoryRow",
    "QueuedLoad",
    "SourceDbConfig",
    "TableStatus",
    "active_control_keys",
    "close_history_row",
    "connect",
    "failed_retryable",
    "get_control_row",
    "get_source_config",
    "history_rows",
    "in_progress_rows",
    "landing_pending",
    "mark_failed",
    "mark_in_progress",
    "mark_manual_review",
    "mark_staging_processed",
    "mark_succeeded",
    "open_history_rows",
    "queue_ready_tables",
    "ready_tables",
    "record_run_id",
    "reset_for_retry",
    "stuck_queued",
    "stuck_running",
    "table_status",
]
