"""Source columns equal but for case (`Val`, `val`) are a configuration error naming the table and
the columns, in `dataloader validate` and in the load, which writes nothing (issue 23). Before: a
permanent `worker_error` (`Duplicate field name (case-insensitive)`), no table named, an empty
directory left in the lake. PostgreSQL only: MariaDB's column names are case-insensitive."""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest
from loadtest_support import SourceDB
from test_local_load import add_control_row

from pipes_workers.local_load import load_control_key
from pipes_workers.validate import validate_control_rows


@pytest.mark.parametrize("strategy", ["full", "incremental"])
def test_columns_equal_but_for_case_are_refused(
    control_conn: psycopg.Connection,
    control_db_url: str,
    pg_source: SourceDB,
    lake_root: Path,
    strategy: str,
) -> None:
    table = f"dup_{uuid.uuid4().hex[:8]}"
    pg_source.execute(
        f'CREATE TABLE {table} (id integer PRIMARY KEY, updated_at timestamptz, "Val" text, val text, '
        '"NOTE" text, "Note" text, "note" text)'
    )
    pg_source.execute(f"INSERT INTO {table} VALUES (1, now(), 'a', 'b', 'c', 'd', 'e')")
    fields = {"load_strategy": strategy}
    if strategy == "incremental":
        fields |= {"primary_keys": ["id"], "incremental_column": "updated_at"}
    key = add_control_row(control_conn, pg_source, table, **fields)
    refusal = (
        f"source table \"public\".\"{table}\": columns 'Val', 'val'; 'NOTE', 'Note', 'note' differ "
        "only in case, and Delta column names are case-insensitive: rename one in the source, or load "
        "a view that aliases it"
    )

    (check,) = validate_control_rows(control_db_url, key)
    assert check.problems == (refusal,)

    result = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)

    assert result.error is not None
    assert (result.error.kind, result.error.code) == ("configuration", "case_duplicate_columns")
    assert result.error.message == refusal
    row = control_conn.execute(
        "SELECT last_status, last_error_kind, last_error_code, last_status_message "
        "FROM dataloader.table_control WHERE control_key = %s",
        (key,),
    ).fetchone()
    assert row == ("Failed", "configuration", "case_duplicate_columns", refusal)
    assert not (lake_root / "bronze" / "test" / table).exists()
