"""SQLAlchemy Core tables: the one definition of the control schema (`dataloader`).

The Alembic revisions in `control_db/migrations/versions/` create exactly these tables (plus the
validating and history triggers and the `v_table_status` view); `tests/control_db/test_migrations.py`
checks that the migrated database and this module agree. What `db_config_value` may hold per
`db_type` is the table `DB_CONFIG_KEYS` in `dataloader_contract/vocabulary.py`, which migration 0003's
trigger follows.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from control_db.urls import CONTROL_SCHEMA
from dataloader_contract.vocabulary import (
    DB_TYPES,
    DELETE_MODES,
    ERROR_KINDS,
    KV_SCOPES,
    LOAD_STATUSES,
    LOAD_STRATEGIES,
    RETRY_DECISIONS,
)


def _one_of(column: str, names: tuple[str, ...], *, nullable: bool = False) -> str:
    listed = ", ".join(f"'{name}'" for name in names)
    rule = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {rule}" if nullable else rule


def _timestamps() -> list[Column]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    ]


metadata = MetaData(schema=CONTROL_SCHEMA)

table_control_dbconfig = Table(
    "table_control_dbconfig",
    metadata,
    Column("db_config_key", Text, primary_key=True),
    Column("db_type", Text, nullable=False),
    Column("db_config_value", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("db_kv_scope", Text, nullable=False, server_default=text("'env'")),
    *_timestamps(),
    CheckConstraint(_one_of("db_type", DB_TYPES), name="ck_table_control_dbconfig_db_type"),
    CheckConstraint(_one_of("db_kv_scope", KV_SCOPES), name="ck_table_control_dbconfig_db_kv_scope"),
)

table_control = Table(
    "table_control",
    metadata,
    Column("config_id", Integer, primary_key=True, autoincrement=True),
    Column("control_key", Text, nullable=False),
    Column(
        "db_config_key",
        Text,
        ForeignKey(f"{CONTROL_SCHEMA}.table_control_dbconfig.db_config_key", onupdate="CASCADE"),
        nullable=False,
    ),
    Column("source_schema", Text),
    Column("source_table", Text, nullable=False),
    Column("destination_table", Text, nullable=False),
    Column("load_strategy", Text, nullable=False),
    Column("cron", Text, nullable=False),
    Column("cron_timezone", Text, nullable=False, server_default=text("'UTC'")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("primary_keys", ARRAY(Text)),
    Column("incremental_column", Text),
    Column("incremental_value", Text),
    Column("incremental_lookback", Text),
    Column("load_full", Boolean, nullable=False, server_default=text("false")),
    Column("rolling_column", Text),
    Column("rolling_window_days", Integer),
    Column("chunk_column", Text),
    Column("chunk_size", BigInteger),
    Column("next_load_date_time", DateTime(timezone=True)),
    Column("last_status", Text),
    Column("last_status_message", Text),
    Column("status_changed_at", DateTime(timezone=True)),
    Column("last_run_id", Text),
    Column("last_run_url", Text),
    Column("last_rows_processed", BigInteger),
    Column("retry_count", Integer, nullable=False, server_default=text("0")),
    Column("max_retries", Integer, nullable=False, server_default=text("3")),
    Column("manual_review", Boolean, nullable=False, server_default=text("false")),
    Column("manual_review_reason", Text),
    Column("staging_model_processed", Boolean, nullable=False, server_default=text("false")),
    *_timestamps(),
    Column("last_error_kind", Text),
    Column("last_error_code", Text),
    Column("delete_mode", Text, nullable=False, server_default=text("'none'")),
    Column("delete_check_cron", Text),
    Column("last_delete_check_at", DateTime(timezone=True)),
    Column("last_maintenance_at", DateTime(timezone=True)),
    UniqueConstraint("control_key", name="uq_table_control_control_key"),
    UniqueConstraint("destination_table", name="uq_table_control_destination_table"),
    CheckConstraint(_one_of("load_strategy", LOAD_STRATEGIES), name="ck_table_control_load_strategy"),
    CheckConstraint(
        _one_of("last_status", LOAD_STATUSES, nullable=True), name="ck_table_control_last_status"
    ),
    CheckConstraint("max_retries >= 0", name="ck_table_control_max_retries"),
    CheckConstraint("retry_count >= 0", name="ck_table_control_retry_count"),
    CheckConstraint(
        _one_of("last_error_kind", ERROR_KINDS, nullable=True), name="ck_table_control_last_error_kind"
    ),
    CheckConstraint(_one_of("delete_mode", DELETE_MODES), name="ck_table_control_delete_mode"),
    Index("ix_table_control_last_status", "last_status"),
    Index("ix_table_control_active", "control_key", postgresql_where=text("is_active")),
    Index(
        "ix_table_control_staging_pending", "config_id", postgresql_where=text("NOT staging_model_processed")
    ),
)

historical_metadata = Table(
    "historical_metadata",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("control_key", Text, nullable=False),
    Column("config_id", Integer),
    Column("run_id", Text),
    Column("load_strategy", Text),
    Column("load_queued_time", DateTime(timezone=True)),
    Column("load_start_time", DateTime(timezone=True)),
    Column("load_end_time", DateTime(timezone=True)),
    Column("rows_processed", BigInteger),
    Column("load_status", Text, nullable=False),
    Column("watermark_before", Text),
    Column("watermark_after", Text),
    Column("error_message", Text),
    Column("retry_decision", Text),
    Column("retry_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("error_kind", Text),
    Column("error_code", Text),
    Column("rows_deleted", BigInteger),
    CheckConstraint(_one_of("load_status", LOAD_STATUSES), name="ck_historical_metadata_load_status"),
    CheckConstraint(
        _one_of("error_kind", ERROR_KINDS, nullable=True), name="ck_historical_metadata_error_kind"
    ),
    CheckConstraint(
        _one_of("retry_decision", RETRY_DECISIONS, nullable=True),
        name="ck_historical_metadata_retry_decision",
    ),
    Index("ix_historical_metadata_control_key_id", "control_key", "id"),
    Index(
        "ix_historical_metadata_open",
        "id",
        postgresql_where=text("load_end_time IS NULL AND load_status IN ('Queued', 'In Progress')"),
    ),
    Index(
        "ix_historical_metadata_succeeded",
        "control_key",
        "load_end_time",
        postgresql_where=text("load_status = 'Succeeded'"),
    ),
)

table_control_history = Table(
    "table_control_history",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("control_key", Text, nullable=False),
    Column("config_id", Integer),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=text("clock_timestamp()")),
    Column("change_type", Text, nullable=False),
    Column("change_source", Text, nullable=False),
    Column("old_values", JSONB),
    Column("new_values", JSONB),
    CheckConstraint(
        "change_type IN ('INSERT', 'UPDATE', 'DELETE')", name="ck_table_control_history_change_type"
    ),
    Index("ix_table_control_history_control_key_changed_at", "control_key", "changed_at"),
)

# Columns of the `v_table_status` view, in order (the view itself is SQL in the migrations); each
# is named as the table_control / historical_metadata column it shows.
V_TABLE_STATUS_COLUMNS: tuple[str, ...] = (
    "control_key",
    "db_config_key",
    "load_strategy",
    "is_active",
    "last_status",
    "last_load_start_time",
    "last_load_end_time",
    "last_rows_processed",
    "next_load_date_time",
    "lag",
    "retry_count",
    "max_retries",
    "manual_review",
    "manual_review_reason",
    "last_status_message",
)

__all__ = [
    "V_TABLE_STATUS_COLUMNS",
    "historical_metadata",
    "metadata",
    "table_control",
    "table_control_dbconfig",
    "table_control_history",
]
