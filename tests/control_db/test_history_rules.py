"""history_mode: refused at INSERT/UPDATE naming table, column and rule; carried into the LoadRequest."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from control_rows import INCREMENTAL, AddTable, assert_refused_on_insert, insert_table, readme_sql_statements

from control_db import migrate
from control_db import queries as q
from dataloader_contract.request import LoadRequest

KEY = "erp.public.orders"

BAD_HISTORY_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown history_mode",
        {**INCREMENTAL, "history_mode": "scd3"},
        "history_mode",
        "must be one of none, scd2",
    ),
    ("null history_mode", {**INCREMENTAL, "history_mode": None}, "history_mode", "must be one of none, scd2"),
    (
        "scd2 on append_only",
        {
            "load_strategy": "append_only",
            "incremental_column": "id",
            "primary_keys": ["id"],
            "history_mode": "scd2",
        },
        "history_mode",
        "scd2 needs a strategy that merges changed rows on primary_keys",
    ),
    (
        "scd2 on full",
        {"load_strategy": "full", "primary_keys": ["id"], "history_mode": "scd2"},
        "history_mode",
        "not full",
    ),
    (
        "scd2 on cdc without keys",
        {"load_strategy": "cdc", "primary_keys": [], "history_mode": "scd2"},
        "primary_keys",
        "required",
    ),
    (
        "scd2 on check_and_load without keys",
        {"load_strategy": "check_and_load", "incremental_column": "id", "history_mode": "scd2"},
        "primary_keys",
        "for history_mode scd2",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "column", "rule"),
    [case[1:] for case in BAD_HISTORY_ROWS],
    ids=[case[0] for case in BAD_HISTORY_ROWS],
)
def test_bad_history_settings_are_refused_on_insert(
    control_conn: psycopg.Connection, overrides: dict[str, Any], column: str, rule: str
) -> None:
    assert_refused_on_insert(control_conn, KEY, overrides, column, rule)


def test_scd2_on_cdc_is_accepted(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY, load_strategy="cdc", primary_keys=["id"], delete_mode="hard", history_mode="scd2")
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and (row.load_strategy, row.history_mode) == ("cdc", "scd2")


def test_downgrade_below_0014_refuses_scd2_on_cdc_again(fresh_database: str) -> None:
    migrate.upgrade(fresh_database, "0014")
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        insert_table(conn, "erp.public.a", load_strategy="cdc", primary_keys=["id"], history_mode="scd2")
        conn.execute("DELETE FROM dataloader.table_control")
    migrate.downgrade(fresh_database, "0013")
    refused = pytest.raises(psycopg.errors.CheckViolation, match=r"history_mode: scd2 needs .*not cdc")
    with psycopg.connect(fresh_database, autocommit=True) as conn, refused:
        insert_table(conn, "erp.public.b", load_strategy="cdc", primary_keys=["id"], history_mode="scd2")


def test_update_to_a_strategy_without_history_is_refused(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY, **INCREMENTAL, history_mode="scd2")
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.history_mode: scd2 needs"):
        control_conn.execute("UPDATE dataloader.table_control SET load_strategy = 'append_only'")


def test_history_mode_travels_into_the_load_request(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY, **INCREMENTAL, history_mode="scd2")
    add_table("erp.public.plain", **INCREMENTAL)
    add_table(
        "erp.public.window",
        load_strategy="rolling",
        rolling_column="updated_at",
        rolling_window_days=3,
        primary_keys=["id"],
        history_mode="scd2",
    )
    row, source = q.get_control_row(control_conn, KEY), q.get_source_config(control_conn, "erp")
    assert row is not None and source is not None
    request = LoadRequest.from_control_row(row, source, lake_root="/lake", run_id="r1")
    assert request.history_mode == "scd2" and request.keeps_history
    assert LoadRequest.from_dict(request.to_dict()).history_mode == "scd2"
    plain = q.get_control_row(control_conn, "erp.public.plain")
    assert plain is not None and plain.history_mode == "none"


def test_readme_recipe_turns_history_on(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY, **INCREMENTAL)
    (recipe,) = [s for s in readme_sql_statements() if "SET history_mode" in s]
    control_conn.execute(recipe)
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.history_mode == "scd2"
