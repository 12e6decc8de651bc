"""include_columns / exclude_columns / hash_columns: refused at INSERT/UPDATE naming table, column and
rule (migration 0011); good rows are stored and read back into the load request."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from control_rows import BACKFILL, INCREMENTAL, AddTable, insert_source, insert_table

from control_db import queries as q
from dataloader_contract.request import LoadRequest

KEY = "erp.public.customers"
ROLLING = {
    "load_strategy": "rolling",
    "primary_keys": ["id"],
    "rolling_column": "day",
    "rolling_window_days": 7,
}

BAD_COLUMN_ROWS: list[tuple[str, dict[str, Any], str]] = [
    (
        "both lists",
        {"include_columns": ["id", "email"], "exclude_columns": ["password"]},
        "table_control.exclude_columns: cannot be set together with include_columns: set one of them "
        "(the other NULL)",
    ),
    (
        "empty include list",
        {"include_columns": []},
        "table_control.include_columns: must be NULL or a non-empty array of column names (no NULL or empty name)",
    ),
    (
        "NULL name in exclude list",
        {"exclude_columns": ["a", None]},
        "table_control.exclude_columns: must be NULL or a non-empty array of column names (no NULL or empty name)",
    ),
    (
        "empty name in hash list",
        {"hash_columns": [""]},
        "table_control.hash_columns: must be NULL or a non-empty array of column names (no NULL or empty name)",
    ),
    (
        "excluded primary key",
        {**INCREMENTAL, "exclude_columns": ["id"]},
        "table_control.exclude_columns: cannot exclude 'id': it is a primary key (primary_keys), which the load reads",
    ),
    (
        "excluded incremental column",
        {**INCREMENTAL, "exclude_columns": ["notes", "updated_at"]},
        "table_control.exclude_columns: cannot exclude 'updated_at': it is the incremental_column, "
        "which the load reads",
    ),
    (
        "excluded rolling column",
        {**ROLLING, "exclude_columns": ["day"]},
        "table_control.exclude_columns: cannot exclude 'day': it is the rolling_column, which the load reads",
    ),
    (
        "excluded chunk column",
        {**BACKFILL, "chunk_column": "seq", "exclude_columns": ["seq"]},
        "table_control.exclude_columns: cannot exclude 'seq': it is the chunk_column, which the load reads",
    ),
    (
        "include list without the key",
        {**INCREMENTAL, "include_columns": ["updated_at", "email"]},
        "table_control.include_columns: must include 'id': it is a primary key (primary_keys), which the load reads",
    ),
    (
        "include list without the incremental column",
        {**INCREMENTAL, "include_columns": ["id", "email"]},
        "table_control.include_columns: must include 'updated_at': it is the incremental_column, "
        "which the load reads",
    ),
    (
        "hashed incremental column",
        {"load_strategy": "append_only", "incremental_column": "email", "hash_columns": ["email"]},
        "table_control.hash_columns: cannot hash 'email': it is the incremental_column, which must keep its "
        "source values (a watermark, window or chunk over hashes means nothing)",
    ),
    (
        "hashed rolling column",
        {**ROLLING, "hash_columns": ["day"]},
        "table_control.hash_columns: cannot hash 'day': it is the rolling_column, which must keep its "
        "source values (a watermark, window or chunk over hashes means nothing)",
    ),
    (
        "hashed excluded column",
        {"exclude_columns": ["email"], "hash_columns": ["email"]},
        "table_control.hash_columns: cannot hash 'email': the load does not read it "
        "(see include_columns / exclude_columns)",
    ),
    (
        "hashed column left out of the include list",
        {"include_columns": ["id"], "hash_columns": ["email"]},
        "table_control.hash_columns: cannot hash 'email': the load does not read it "
        "(see include_columns / exclude_columns)",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [case[1:] for case in BAD_COLUMN_ROWS],
    ids=[case[0] for case in BAD_COLUMN_ROWS],
)
def test_bad_column_settings_are_refused_on_insert(
    control_conn: psycopg.Connection, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_table(control_conn, KEY, **overrides)
    assert refused.value.diag.message_primary == message
    assert refused.value.diag.column_name == message.split(":")[0].split(".")[1]
    assert refused.value.diag.table_name == "table_control"


def test_update_that_excludes_a_key_is_refused(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY, **INCREMENTAL, exclude_columns=["password"])
    with pytest.raises(
        psycopg.errors.CheckViolation, match=r"^table_control\.exclude_columns: cannot exclude 'id'"
    ):
        control_conn.execute("UPDATE dataloader.table_control SET exclude_columns = '{password,id}'")
    with pytest.raises(
        psycopg.errors.CheckViolation, match=r"^table_control\.hash_columns: cannot hash 'updated_at'"
    ):
        control_conn.execute("UPDATE dataloader.table_control SET hash_columns = '{updated_at}'")


def test_good_column_settings_reach_the_load_request(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY, **INCREMENTAL, exclude_columns=["password", "notes"], hash_columns=["email", "id"])
    add_table(
        "erp.public.b", **INCREMENTAL, include_columns=["id", "updated_at", "email"], hash_columns=["email"]
    )
    add_table("erp.public.c", **BACKFILL)
    insert_source(control_conn)
    row = q.get_control_row(control_conn, KEY)
    source = q.get_source_config(control_conn, "erp")
    assert row is not None and source is not None
    request = LoadRequest.from_control_row(row, source, lake_root="/lake", run_id="r")
    assert request.exclude_columns == ("password", "notes")
    assert request.include_columns == ()
    assert request.hash_columns == ("email", "id")
    assert LoadRequest.from_dict(request.to_dict()) == request
    other = q.get_control_row(control_conn, "erp.public.b")
    assert other is not None
    assert LoadRequest.from_control_row(other, source, lake_root="/l", run_id=None).include_columns == (
        "id",
        "updated_at",
        "email",
    )
    plain = q.get_control_row(control_conn, "erp.public.c")
    assert plain is not None and (plain.include_columns, plain.exclude_columns, plain.hash_columns) == (
        None,
        None,
        None,
    )
