"""Typed queries and status transitions on the control database (psycopg 3, Connection first)."""

from control_db.queries.connection import connect
from control_db.queries.maintenance import (
    MaintenanceClaim,
    active_control_rows,
    claim_for_maintenance,
    maintenance_due,
    release_maintenance,
)
from control_db.queries.reads import (
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
    "active_control_rows",
    "ControlRow",
    "HistoryRow",
    "MaintenanceClaim",
    "QueuedLoad",
    "SourceDbConfig",
    "TableStatus",
    "claim_for_maintenance",
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
    "maintenance_due",
    "mark_succeeded",
    "open_history_rows",
    "queue_ready_tables",
    "ready_tables",
    "record_run_id",
    "release_maintenance",
    "reset_for_retry",
    "stuck_queued",
    "stuck_running",
    "table_status",
]
