"""A cdc control row through `dataloader load` (the control row's lifecycle stores the position as
its watermark) and `dataloader cdc-drop` (explicit, refused while the row is an active cdc row)."""

from __future__ import annotations

import argparse
from pathlib import Path

import psycopg
import pytest
from cdc_support import assert_equals_full_load, insert, typed_table
from loadtest_support import PostgresSource, insert_control_row
from psycopg.types.json import Jsonb

from dataloader_contract.errors import ConfigurationError
from pipes_workers.cdc.command import drop_capture, main
from pipes_workers.cdc.pg_slots import slot_name
from pipes_workers.local_load import load_control_key


def slots(source: PostgresSource) -> list[str]:
    return [r["slot_name"] for r in source.fetch("SELECT slot_name FROM pg_replication_slots")]


def test_cdc_row_loads_then_its_slot_is_dropped_explicitly(
    control_conn: psycopg.Connection, control_db_url: str, cdc_pg_url: str, lake_root: Path
) -> None:
    source = PostgresSource(cdc_pg_url)
    table = typed_table(source)
    insert(source, table, range(1, 4), big=True)
    config = source.config()
    control_conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, %s, %s, 'literal')",
        (config.db_config_key, config.db_type, Jsonb(config.config)),
    )
    key = insert_control_row(
        control_conn, f"test.public.{table}", config.db_config_key, table, source_schema="public",
        destination_table=f"bronze/test/{table}", load_strategy="cdc", incremental_column=None,
        delete_mode="hard",
    )  # fmt: skip
    first = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    assert first.error is None and first.rows_read == 3
    stored = control_conn.execute(
        "SELECT incremental_value FROM dataloader.table_control WHERE control_key = %s", (key,)
    ).fetchone()
    assert stored == (first.watermark_after,)
    source.execute(f"UPDATE {table} SET amount = 0 WHERE id = 2")
    source.execute(f"DELETE FROM {table} WHERE id = 3")
    second = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    assert second.error is None and second.rows_written == 1 and second.rows_deleted == 1
    request = source.request(
        table,
        "cdc",
        lake_root,
        control_key=key,
        source_schema="public",
        destination_table=f"bronze/test/{table}",
    )
    assert_equals_full_load(request)

    assert slot_name(key) in slots(source)
    with pytest.raises(ConfigurationError, match="active cdc row"):
        drop_capture(control_db_url, key)
    assert slot_name(key) in slots(source)
    control_conn.execute(
        "UPDATE dataloader.table_control SET is_active = false WHERE control_key = %s", (key,)
    )
    assert "dropped replication slot" in drop_capture(control_db_url, key)
    assert slot_name(key) not in slots(source)
    # A deleted row: its source is named on the command line; dropping twice is harmless.
    control_conn.execute("DELETE FROM dataloader.table_control WHERE control_key = %s", (key,))
    with pytest.raises(ConfigurationError, match="--source"):
        drop_capture(control_db_url, key)
    assert "dropped" in drop_capture(control_db_url, key, source_key=config.db_config_key)
    source.conn.close()


def test_cdc_drop_command_reports_a_refusal(control_db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    args = argparse.Namespace(control_key="no.such.row", source=None, force=False)
    assert main(args) == 1
