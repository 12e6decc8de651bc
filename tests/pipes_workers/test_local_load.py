"""`dataloader load CONTROL_KEY`: control-row transitions around an in-process load."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from loadtest_support import SourceDB, assert_same_rows, insert_control_row, make_rows
from psycopg.types.json import Jsonb

from pipes_workers.local_load import load_control_key, main, register


def add_control_row(conn: psycopg.Connection, source: SourceDB, table: str, **fields: object) -> str:
    config = source.config()
    conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, %s, %s, 'literal') ON CONFLICT DO NOTHING",
        (config.db_config_key, config.db_type, Jsonb(config.config)),
    )
    return insert_control_row(
        conn,
        f"test.public.{table}",
        config.db_config_key,
        table,
        **{"source_schema": "public", "destination_table": f"bronze/test/{table}", **fields},
    )


def events_row(conn: psycopg.Connection, source: SourceDB, rows: int, **fields: object) -> tuple[str, str]:
    """A new events table holding ids 1..rows, and its control row; (table, control_key)."""
    table = source.events_table()
    source.insert(table, make_rows(range(1, rows + 1)))
    return table, add_control_row(conn, source, table, **fields)


def control_row(conn: psycopg.Connection, key: str) -> dict:
    cur = conn.execute(
        "SELECT last_status, incremental_value, last_rows_processed, load_full, last_status_message "
        "FROM dataloader.table_control WHERE control_key = %s",
        (key,),
    )
    names = [d.name for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))


def test_load_walks_the_control_row(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    table, key = events_row(control_conn, pg_source, 4, load_full=True)
    messages: list[str] = []
    result = load_control_key(control_db_url, key, str(lake_root), log=messages.append)
    assert result.rows_read == 4 and result.load_full_done
    row = control_row(control_conn, key)
    assert row["last_status"] == "Succeeded" and row["last_rows_processed"] == 4
    assert row["incremental_value"] == result.watermark_after and not row["load_full"]
    assert any("rows" in m for m in messages)
    assert not any("password" in m.lower() for m in messages)
    history = control_conn.execute(
        "SELECT load_status, rows_processed, watermark_after FROM dataloader.historical_metadata "
        "WHERE control_key = %s",
        (key,),
    ).fetchall()
    assert history == [("Succeeded", 4, result.watermark_after)]

    pg_source.insert(table, make_rows(range(5, 6), base=datetime(2025, 1, 1, tzinfo=UTC)))
    second = load_control_key(control_db_url, key, str(lake_root), log=messages.append)
    assert second.rows_read == 1 and second.watermark_before == result.watermark_after
    request = pg_source.request(table, "incremental", lake_root, destination_table=f"bronze/test/{table}")
    assert_same_rows(pg_source, table, request)


def test_failed_load_marks_the_row_failed(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    table = pg_source.events_table()
    key = add_control_row(control_conn, pg_source, table, incremental_column="no_such_column")
    result = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    assert result.error is not None and result.error.kind == "permanent"
    row = control_row(control_conn, key)
    assert row["last_status"] == "Failed"
    assert "no_such_column" in row["last_status_message"]
    assert not row["last_status_message"].startswith("PermanentLoadError")  # the text appears once
    kind = control_conn.execute(
        "SELECT last_error_kind FROM dataloader.table_control WHERE control_key = %s", (key,)
    ).fetchone()
    assert kind == ("permanent",)


def test_an_unexpected_exception_marks_the_row_failed_and_the_retry_loads_once(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    table, key = events_row(control_conn, pg_source, 5, load_strategy="append_only")

    def log_that_breaks_after_the_commit(message: str) -> None:
        if " rows in " in message:  # printed once the Delta commit is made
            raise RuntimeError("stdout went away, password=hunter2")

    result = load_control_key(control_db_url, key, str(lake_root), log=log_that_breaks_after_the_commit)

    assert result.error is not None and result.error.code == "worker_error"
    assert result.error.kind == "permanent" and "hunter2" not in result.error.message
    row = control_row(control_conn, key)
    assert row["last_status"] == "Failed" and "RuntimeError" in row["last_status_message"]
    control_conn.execute(
        "UPDATE dataloader.table_control SET last_status = NULL WHERE control_key = %s", (key,)
    )
    assert load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None).succeeded
    request = pg_source.request(table, "append_only", lake_root, destination_table=f"bronze/test/{table}")
    assert_same_rows(pg_source, table, request)


def test_a_reader_that_goes_away_does_not_fail_the_load(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    _, key = events_row(control_conn, pg_source, 3)
    env = {"DATALOADER_CONTROL_DB_URL": control_db_url, "DATALOADER_LAKE_ROOT": str(lake_root)}
    process = subprocess.Popen(
        [sys.executable, "-m", "control_db.cli", "load", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert process.stdout is not None
    process.stdout.close()  # `dataloader load KEY | head -0`
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr.decode()
    assert control_row(control_conn, key)["last_status"] == "Succeeded"


def test_cli_exit_codes(
    control_conn: psycopg.Connection,
    control_db_url: str,
    pg_source: SourceDB,
    lake_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, key = events_row(control_conn, pg_source, 2)
    parser = argparse.ArgumentParser(prog="dataloader")
    register(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", str(lake_root))
    args = parser.parse_args(["load", key])
    assert args.func(args) == 0
    assert "Succeeded" in capsys.readouterr().out
    assert main(parser.parse_args(["load", "no.such.key"])) == 1
    assert "no.such.key" in capsys.readouterr().err


def test_rows_deleted_reach_the_history_and_the_row(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    table, key = events_row(control_conn, pg_source, 5, delete_mode="hard")
    assert load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None).succeeded
    pg_source.conn.execute(f"DELETE FROM {pg_source.quote(table)} WHERE id IN (2, 4)")

    second = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)

    assert second.rows_deleted == 2
    history = control_conn.execute(
        "SELECT rows_deleted FROM dataloader.historical_metadata WHERE control_key = %s ORDER BY id", (key,)
    ).fetchall()
    assert history[-1] == (2,)
    assert "2 rows deleted at the source reconciled" in control_row(control_conn, key)["last_status_message"]


def test_a_load_imports_no_module_it_does_not_use(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    """pandas and pyarrow.dataset (0.16 s of start-up together) stay out of a full load's process."""
    _, key = events_row(control_conn, pg_source, 4, load_strategy="full")
    assert _unused_modules_after_load(control_db_url, key, lake_root, "result.rows_read == 4") == "none"


def _unused_modules_after_load(control_db_url: str, key: str, lake_root: Path, *asserts: str) -> str:
    """Which of pandas, pyarrow.dataset and dagster a load of `key` in a fresh process imported
    ('none' when none), after `asserts` (expressions over its `result`) held in that process."""
    program = "\n".join(
        [
            "import sys",
            "from pipes_workers.local_load import load_control_key",
            f"result = load_control_key({control_db_url!r}, {key!r}, {str(lake_root)!r}, log=lambda _m: None)",
            "assert result.error is None, result",
            *(f"assert {condition}, result" for condition in asserts),
            "print(' '.join(m for m in ('pandas', 'pyarrow.dataset', 'dagster') if m in sys.modules) or 'none')",
        ]
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_a_merge_under_a_unique_keys_claim_imports_no_module_it_does_not_use(
    control_conn: psycopg.Connection, control_db_url: str, pg_source: SourceDB, lake_root: Path
) -> None:
    """Neither does an incremental load whose merge and key check ride on a unique-keys claim."""
    table, key = events_row(control_conn, pg_source, 4)  # incremental on updated_at, key id
    load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    pg_source.insert(table, make_rows(range(5, 7), base=datetime(2025, 1, 1, tzinfo=UTC)))
    load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)  # scans once, claims
    pg_source.insert(table, make_rows(range(7, 9), base=datetime(2025, 2, 1, tzinfo=UTC)))
    key_check = "[c for c in result.checks if c.name == 'primary_key_unique'][0]"
    unused = _unused_modules_after_load(
        control_db_url,
        key,
        lake_root,
        "result.rows_read == 2",
        f"{key_check}.passed and 'unique-keys claim' in {key_check}.metadata['evidence']",
    )
    assert unused == "none"
