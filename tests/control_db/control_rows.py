"""Insert source and control rows with sensible defaults (shared by the control_db tests)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

AddTable = Callable[..., int]


def insert_source(conn: psycopg.Connection, db_config_key: str = "erp", **overrides: Any) -> None:
    """Insert (or keep) a source database row."""
    values: dict[str, Any] = {
        "db_config_key": db_config_key,
        "db_type": "postgresql",
        "db_config_value": Jsonb(
            {"host": "ERP_HOST", "port": 5432, "database": "ERP_DB", "password": "ERP_PASSWORD"}
        ),
        "db_kv_scope": "env",
        **overrides,
    }
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    conn.execute(
        f"INSERT INTO dataloader.table_control_dbconfig ({columns}) VALUES ({placeholders}) "
        "ON CONFLICT (db_config_key) DO NOTHING",
        values,
    )


def insert_table(conn: psycopg.Connection, control_key: str, /, **overrides: Any) -> int:
    """Insert a control row (full strategy, hourly, source `erp` unless overridden); return config_id."""
    values: dict[str, Any] = {
        "control_key": control_key,
        "db_config_key": "erp",
        "source_schema": "public",
        "source_table": control_key.rsplit(".", 1)[-1],
        "destination_table": "bronze/" + control_key.replace(".", "_"),
        "load_strategy": "full",
        "cron": "0 * * * *",
        **overrides,
    }
    insert_source(conn, values["db_config_key"])
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    row = conn.execute(
        f"INSERT INTO dataloader.table_control ({columns}) VALUES ({placeholders}) RETURNING config_id",
        values,
    ).fetchone()
    assert row is not None
    return row[0]


def assert_refused_on_insert(
    conn: psycopg.Connection, control_key: str, overrides: dict[str, Any], column: str, rule: str
) -> None:
    """Inserting a control row with `overrides` is refused as `table_control.<column>: ...<rule>...`."""
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_table(conn, control_key, **overrides)
    message = refused.value.diag.message_primary or ""
    assert message.startswith(f"table_control.{column}: "), message
    assert rule in message
    assert refused.value.diag.column_name == column


INCREMENTAL = {"load_strategy": "incremental", "incremental_column": "updated_at", "primary_keys": ["id"]}
BACKFILL = {
    "load_strategy": "chunked_backfill",
    "incremental_column": "updated_at",
    "primary_keys": ["id"],
    "chunk_column": "id",
    "chunk_size": 1000,
}


@contextmanager
def rules_of_0003_disabled(conn: psycopg.Connection) -> Iterator[None]:
    """Store rows as a database from before migration 0003 could hold them (its triggers off)."""
    tables = ("table_control", "table_control_dbconfig")
    for table in tables:
        conn.execute(f"ALTER TABLE dataloader.{table} DISABLE TRIGGER a_validate_values")
    try:
        yield
    finally:
        for table in tables:
            conn.execute(f"ALTER TABLE dataloader.{table} ENABLE TRIGGER a_validate_values")


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_sql_statements() -> list[str]:
    """Every statement of the README's ```sql blocks, as written there (`--` comments left out)."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)
    code = [re.sub(r"--[^\n]*", "", block) for block in blocks]
    return [s.strip() for block in code for s in block.split(";") if s.strip()]


def start_queued(conn: psycopg.Connection, control_key: str, *, run_id: str = "run-1") -> int:
    """Queue the ready rows and start `control_key` (Queued -> In Progress); return its history id."""
    from control_db import queries

    (load,) = [
        load for load in queries.queue_ready_tables(conn, limit=100) if load.control_key == control_key
    ]
    history_id = queries.mark_in_progress(conn, control_key, run_id=run_id, history_id=load.history_id)
    assert history_id == load.history_id
    return history_id


def succeed(
    conn: psycopg.Connection, control_key: str, history_id: int, *, run_id: str = "run-1", **fields: Any
) -> bool:
    """`mark_succeeded` with a successful LoadResult of `control_key` holding `fields` (strategy
    `incremental` unless given)."""
    from control_db import queries
    from dataloader_contract.result import LoadResult

    result = LoadResult(control_key=control_key, **{"strategy": "incremental", **fields})
    return queries.mark_succeeded(conn, control_key, history_id=history_id, run_id=run_id, result=result)
