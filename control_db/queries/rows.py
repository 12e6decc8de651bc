"""The control schema's one declaration in Python: a frozen dataclass per table (and view), its
fields the columns in table order, `X | None` exactly where the column is nullable.

The query functions return these and build their column lists from them (`column_list`);
`tests/control_db/test_migrations.py` checks each against the migrated database, so adding a
column means a migration plus a field here. The DDL itself lives only in the Alembic revisions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class ControlRow:
    """One row of `dataloader.table_control` (every column)."""

    config_id: int
    control_key: str
    db_config_key: str
    source_schema: str | None
    source_table: str
    destination_table: str
    load_strategy: str
    cron: str
    cron_timezone: str
    is_active: bool
    primary_keys: list[str] | None
    incremental_column: str | None
    incremental_value: str | None
    incremental_lookback: str | None
    load_full: bool
    rolling_column: str | None
    rolling_window_days: int | None
    chunk_column: str | None
    chunk_size: int | None
    next_load_date_time: datetime | None
    last_status: str | None
    last_status_message: str | None
    status_changed_at: datetime | None
    last_run_id: str | None
    last_run_url: str | None
    last_rows_processed: int | None
    retry_count: int
    max_retries: int
    manual_review: bool
    manual_review_reason: str | None
    staging_model_processed: bool
    created_at: datetime
    updated_at: datetime
    last_error_kind: str | None
    last_error_code: str | None
    delete_mode: str
    delete_check_cron: str | None
    last_delete_check_at: datetime | None
    last_maintenance_at: datetime | None
    maintenance_owner: str | None
    maintenance_expires_at: datetime | None
    include_columns: list[str] | None
    exclude_columns: list[str] | None
    hash_columns: list[str] | None
    partition_by: list[str] | None
    schema_policy: str
    history_mode: str


@dataclass(frozen=True)
class SourceDbConfig:
    """A source database from `dataloader.table_control_dbconfig` (secret *names*, not values, unless literal)."""

    db_config_key: str
    db_type: str
    db_config_value: dict[str, Any]
    db_kv_scope: str


@dataclass(frozen=True)
class DbConfigRow(SourceDbConfig):
    """Every column of `dataloader.table_control_dbconfig`: the source plus its bookkeeping times."""

    created_at: datetime
    updated_at: datetime
    breaker_enabled: bool
    breaker_failures: int
    breaker_window_s: int
    breaker_cooldown_s: int
    breaker_max_cooldown_s: int


@dataclass(frozen=True)
class QueuedLoad:
    """A table `queue_ready_tables` just queued, with the history row opened for the attempt."""

    control_key: str
    config_id: int
    db_config_key: str
    load_strategy: str
    history_id: int


@dataclass(frozen=True)
class HistoryRow:
    """One load attempt from `dataloader.historical_metadata`."""

    id: int
    control_key: str
    config_id: int | None
    run_id: str | None
    load_strategy: str | None
    load_queued_time: datetime | None
    load_start_time: datetime | None
    load_end_time: datetime | None
    rows_processed: int | None
    load_status: str
    watermark_before: str | None
    watermark_after: str | None
    error_message: str | None
    retry_decision: str | None
    retry_reason: str | None
    created_at: datetime
    error_kind: str | None
    error_code: str | None
    rows_deleted: int | None


@dataclass(frozen=True)
class ControlChange:
    """One row of `dataloader.table_control_history` (written by its trigger only)."""

    id: int
    control_key: str
    config_id: int | None
    changed_at: datetime
    change_type: str
    change_source: str
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None


@dataclass(frozen=True)
class TableStatus:
    """One row of the `dataloader.v_table_status` view (columns named as in table_control)."""

    control_key: str
    db_config_key: str
    load_strategy: str
    is_active: bool
    last_status: str | None
    last_load_start_time: datetime | None
    last_load_end_time: datetime | None
    last_rows_processed: int | None
    next_load_date_time: datetime | None
    lag: timedelta | None
    retry_count: int
    max_retries: int
    manual_review: bool
    manual_review_reason: str | None
    last_status_message: str | None
    circuit: str


@dataclass(frozen=True)
class SourceCircuit:
    """One row of `dataloader.source_circuit`: a source's circuit breaker (control_db/circuit.py)."""

    db_config_key: str
    state: str
    failures: int
    window_started_at: datetime | None
    opened_at: datetime | None
    cooldown_s: int | None
    open_until: datetime | None
    probe_control_key: str | None
    reason: str | None
    changed_at: datetime


@dataclass(frozen=True)
class CircuitChange:
    """One row of `dataloader.source_circuit_history` (written by its trigger on each transition)."""

    id: int
    db_config_key: str
    changed_at: datetime
    old_state: str | None
    new_state: str
    failures: int
    cooldown_s: int | None
    open_until: datetime | None
    probe_control_key: str | None
    reason: str | None
    change_source: str


@dataclass(frozen=True)
class SourceStatus:
    """One row of the `dataloader.v_source_status` view: a source, its circuit and its tables."""

    db_config_key: str
    db_type: str
    circuit: str
    failures: int
    window_started_at: datetime | None
    opened_at: datetime | None
    open_until: datetime | None
    cooldown_s: int | None
    probe_control_key: str | None
    reason: str | None
    changed_at: datetime | None
    breaker_enabled: bool
    breaker_failures: int
    breaker_window_s: int
    breaker_cooldown_s: int
    breaker_max_cooldown_s: int
    active_tables: int
    queued: int
    in_progress: int
    failed: int


# Table (or view) of the control schema -> the dataclass declaring its columns.
TABLE_ROWS: dict[str, type] = {
    "table_control_dbconfig": DbConfigRow,
    "table_control": ControlRow,
    "historical_metadata": HistoryRow,
    "table_control_history": ControlChange,
    "source_circuit": SourceCircuit,
    "source_circuit_history": CircuitChange,
}
VIEW_ROWS: dict[str, type] = {"v_table_status": TableStatus, "v_source_status": SourceStatus}


def column_list(row_type: type, alias: str) -> str:
    """`alias.col1, alias.col2, …` for every field of `row_type`, in declaration order."""
    return ", ".join(f"{alias}.{field.name}" for field in fields(row_type))
