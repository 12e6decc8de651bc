"""The control database the `dataloader load` variants run against: migrated with the real
migrations, one source row and one `full` control row per benchmark table, reset before each run."""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from psycopg.types.json import Jsonb

from control_db.migrate import upgrade


def _source_value(url: str, db_type: str) -> dict:
    parts = urlsplit(url)
    default_port = 5432 if db_type == "postgresql" else 3306
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or default_port,
        "database": parts.path.lstrip("/"),
        "user": parts.username or ("postgres" if db_type == "postgresql" else "root"),
        "password": parts.password or "",
    }


def prepare_control_row(
    control_url: str,
    *,
    source_url: str,
    db_type: str,
    table: str,
    lake_key: str,
    load_strategy: str = "full",
    watermark: str | None = None,
    delete_mode: str = "none",
    key_suffix: str = "",
    partition_by: list[str] | None = None,
) -> str:
    """Migrate the control database, upsert the source and a control row for `table` (primary key
    `id`, hourly cron; `incremental` on `updated_at` from `watermark` when asked; `delete_mode`) with
    no status, so `dataloader load` takes it; returns its control_key (`key_suffix` tells two rows on
    one table apart; `partition_by` as the control column)."""
    upgrade(control_url)
    source_key = f"bench_{db_type}"
    control_key = f"{source_key}.{table}{key_suffix}"
    with psycopg.connect(control_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
            "VALUES (%s, %s, %s, 'literal') ON CONFLICT (db_config_key) "
            "DO UPDATE SET db_config_value = EXCLUDED.db_config_value",
            (source_key, db_type, Jsonb(_source_value(source_url, db_type))),
        )
        conn.execute(
            "DELETE FROM dataloader.table_control WHERE control_key = %s OR destination_table = %s",
            (control_key, f"bronze/bench/{lake_key}"),
        )
        conn.execute(
            "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, source_table, "
            "destination_table, load_strategy, cron, primary_keys, incremental_column, incremental_value, "
            "delete_mode, partition_by) VALUES (%s, %s, %s, %s, %s, %s, '0 * * * *', ARRAY['id'], %s, %s, %s, %s)",
            (
                control_key,
                source_key,
                "public" if db_type == "postgresql" else None,
                table,
                f"bronze/bench/{lake_key}",
                load_strategy,
                "updated_at" if load_strategy == "incremental" else None,
                watermark,
                delete_mode,
                partition_by,
            ),
        )
    return control_key
