"""Typed queries and status transitions on the control database (psycopg 3, Connection first)."""

from control_db.queries.connection import connect
from control_db.queries.reads import (
    failed_retryable,
    get_control_row,
    get_source_config,
    history_row,
    history_rows,
    in_progress_rows,
    landing_pending,
    open_history_rows,
    queued_attempts,
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
    queue_by_hand,
    queue_ready_tables,
    reset_for_retry,
)

__all__ = [
    "ControlRow",
    "HistoryRow",
    "QueuedLoad",
    "SourceDbConfig",
    "TableStatus",
    "close_history_row",
    "connect",
    "failed_retryable",
    "get_control_row",
    "get_source_config",
    "history_row",
    "history_rows",
    "in_progress_rows",
    "landing_pending",
    "mark_failed",
    "mark_in_progress",
    "mark_manual_review",
    "mark_staging_processed",
    "mark_succeeded",
    "open_history_rows",
    "queued_attempts",
    "queue_by_hand",
    "queue_ready_tables",
    "reset_for_retry",
    "stuck_queued",
    "stuck_running",
    "table_status",
]
