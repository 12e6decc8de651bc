"""delete_mode / delete_check_cron: refused at INSERT/UPDATE like the other rules; rows_deleted recorded."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from control_rows import INCREMENTAL, AddTable, assert_refused_on_insert, start_queued, succeed

from control_db import queries as q

KEY = "erp.public.orders"

BAD_DELETE_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown delete_mode", {**INCREMENTAL, "delete_mode": "purge"}, "delete_mode", "must be one of none"),
    ("null delete_mode", {**INCREMENTAL, "delete_mode": None}, "delete_mode", "must be one of none"),
    (
        "hard without keys",
        {"load_strategy": "append_only", "incremental_column": "id", "delete_mode": "hard"},
        "primary_keys",
        "for delete_mode hard",
    ),
    (
        "soft with empty keys",
        {
            "load_strategy": "check_and_load",
            "incremental_column": "id",
            "primary_keys": [],
            "delete_mode": "soft",
        },
        "primary_keys",
        "for delete_mode soft",
    ),
    (
        "soft on full",
        {"load_strategy": "full", "primary_keys": ["id"], "delete_mode": "soft"},
        "delete_mode",
        "soft needs a strategy that keeps rows",
    ),
    (
        "bad delete_check_cron",
        {**INCREMENTAL, "delete_mode": "hard", "delete_check_cron": "nightly"},
        "delete_check_cron",
        "5-field cron expression",
    ),
    (
        "delete_check_cron hour out of range",
        {**INCREMENTAL, "delete_mode": "hard", "delete_check_cron": "0 25 * * *"},
        "delete_check_cron",
        "must be NULL (reconcile with every load) or a valid cron: hour 25 is out of range 0-23",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "column", "rule"),
    [case[1:] for case in BAD_DELETE_ROWS],
    ids=[case[0] for case in BAD_DELETE_ROWS],
)
def test_bad_delete_settings_are_refused_on_insert(
    control_conn: psycopg.Connection, overrides: dict[str, Any], column: str, rule: str
) -> None:
    assert_refused_on_insert(control_conn, KEY, overrides, column, rule)


def test_update_that_drops_keys_of_a_deleting_row_is_refused(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(
        KEY, load_strategy="append_only", incremental_column="id", primary_keys=["id"], delete_mode="soft"
    )
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.primary_keys: required"):
        control_conn.execute("UPDATE dataloader.table_control SET primary_keys = NULL")
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.delete_check_cron: "):
        control_conn.execute("UPDATE dataloader.table_control SET delete_check_cron = '0 25 * * *'")


def test_good_delete_settings_are_accepted(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table("erp.public.a", **INCREMENTAL)
    add_table("erp.public.b", **INCREMENTAL, delete_mode="hard", delete_check_cron="0 3 * * *")
    add_table(
        "erp.public.c",
        load_strategy="append_only",
        incremental_column="id",
        primary_keys=["id"],
        delete_mode="soft",
    )
    rows = {
        key: q.get_control_row(control_conn, key) for key in ("erp.public.a", "erp.public.b", "erp.public.c")
    }
    assert {key: (r.delete_mode, r.delete_check_cron) for key, r in rows.items() if r} == {
        "erp.public.a": ("none", None),
        "erp.public.b": ("hard", "0 3 * * *"),
        "erp.public.c": ("soft", None),
    }


def test_succeeded_records_rows_deleted_and_the_check_time(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY, **INCREMENTAL, delete_mode="hard")
    history_id = start_queued(control_conn, KEY)
    assert succeed(control_conn, KEY, history_id, rows_read=5, watermark_after="9")
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_delete_check_at is None  # no reconciliation ran
    assert q.history_rows(control_conn, KEY)[0].rows_deleted is None

    control_conn.execute("UPDATE dataloader.table_control SET next_load_date_time = NULL")
    history_id = start_queued(control_conn, KEY)
    assert succeed(
        control_conn, KEY, history_id, rows_read=0, watermark_before="9", watermark_after="9", rows_deleted=3
    )
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_delete_check_at is not None
    history = {h.id: h.rows_deleted for h in q.history_rows(control_conn, KEY)}
    assert history[history_id] == 3
