"""Bad rows are refused at INSERT/UPDATE time with `<table>.<column>: <rule>` (SQLSTATE 23514)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from control_rows import BACKFILL, INCREMENTAL, insert_source, insert_table
from croniter import croniter

ROLLING = {
    "load_strategy": "rolling",
    "rolling_column": "day",
    "rolling_window_days": 7,
    "primary_keys": ["id"],
}


@pytest.fixture(scope="module")
def refusing_conn(control_db_url: str) -> Iterator[psycopg.Connection]:
    """One connection for the refused inserts (they leave nothing behind, so no per-test truncation)."""
    with psycopg.connect(control_db_url, autocommit=True, application_name="dataloader-tests") as conn:
        yield conn


BAD_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    # (case id, overrides, column, words of the rule)
    ("unknown strategy", {"load_strategy": "upsert"}, "load_strategy", "must be one of"),
    ("null strategy", {"load_strategy": None}, "load_strategy", "must be one of"),
    ("unknown status", {"last_status": "Running"}, "last_status", "must be NULL or one of"),
    (
        "incremental without column",
        {**INCREMENTAL, "incremental_column": None},
        "incremental_column",
        "required for load_strategy incremental",
    ),
    (
        "append_only without column",
        {"load_strategy": "append_only"},
        "incremental_column",
        "required for load_strategy append_only",
    ),
    (
        "check_and_load without column",
        {"load_strategy": "check_and_load", "incremental_column": ""},
        "incremental_column",
        "required for load_strategy check_and_load",
    ),
    (
        "incremental without keys",
        {**INCREMENTAL, "primary_keys": None},
        "primary_keys",
        "for load_strategy incremental",
    ),
    ("incremental with empty keys", {**INCREMENTAL, "primary_keys": []}, "primary_keys", "non-empty"),
    ("rolling without keys", {**ROLLING, "primary_keys": None}, "primary_keys", "for load_strategy rolling"),
    (
        "rolling without column",
        {**ROLLING, "rolling_column": None},
        "rolling_column",
        "required for load_strategy rolling",
    ),
    (
        "rolling without window",
        {**ROLLING, "rolling_window_days": None},
        "rolling_window_days",
        "must be > 0",
    ),
    ("rolling with zero window", {**ROLLING, "rolling_window_days": 0}, "rolling_window_days", "must be > 0"),
    (
        "backfill without chunk column",
        {**BACKFILL, "chunk_column": None},
        "chunk_column",
        "required for load_strategy chunked_backfill",
    ),
    ("backfill without chunk size", {**BACKFILL, "chunk_size": None}, "chunk_size", "must be > 0"),
    ("backfill with negative chunk size", {**BACKFILL, "chunk_size": -5}, "chunk_size", "must be > 0"),
    (
        "backfill without incremental column",
        {**BACKFILL, "incremental_column": None},
        "incremental_column",
        "required for load_strategy chunked_backfill",
    ),
    (
        "backfill without keys",
        {**BACKFILL, "primary_keys": None},
        "primary_keys",
        "for load_strategy chunked_backfill",
    ),
    ("cron with 4 fields", {"cron": "0 * * *"}, "cron", "5-field cron expression"),
    ("cron with 6 fields", {"cron": "0 0 * * * *"}, "cron", "5-field cron expression"),
    ("cron minute out of range", {"cron": "61 * * * *"}, "cron", "5-field cron expression"),
    ("cron hour out of range", {"cron": "0 24 * * *"}, "cron", "5-field cron expression"),
    ("cron day 0", {"cron": "0 0 0 * *"}, "cron", "5-field cron expression"),
    ("cron unknown month name", {"cron": "0 0 1 FOO *"}, "cron", "5-field cron expression"),
    ("cron reversed range", {"cron": "0 5-1 * * *"}, "cron", "5-field cron expression"),
    ("cron zero step", {"cron": "*/0 * * * *"}, "cron", "5-field cron expression"),
    ("cron garbage", {"cron": "every hour"}, "cron", "5-field cron expression"),
    ("cron null", {"cron": None}, "cron", "5-field cron expression"),
    ("unknown time zone", {"cron_timezone": "Mars/Olympus_Mons"}, "cron_timezone", "pg_timezone_names"),
    ("null time zone", {"cron_timezone": None}, "cron_timezone", "pg_timezone_names"),
    ("destination with ..", {"destination_table": "bronze/../etc"}, "destination_table", "safe path"),
    ("destination with leading /", {"destination_table": "/bronze/orders"}, "destination_table", "safe path"),
    (
        "destination with trailing /",
        {"destination_table": "bronze/orders/"},
        "destination_table",
        "safe path",
    ),
    ("destination with space", {"destination_table": "bronze/my orders"}, "destination_table", "safe path"),
    ("destination null", {"destination_table": None}, "destination_table", "safe path"),
    ("negative max_retries", {"max_retries": -1}, "max_retries", "must be >= 0"),
    ("null max_retries", {"max_retries": None}, "max_retries", "must be >= 0"),
    (
        "lookback not interval",
        {"incremental_lookback": "a while"},
        "incremental_lookback",
        "integer or an interval",
    ),
    ("empty control_key", {"control_key": " "}, "control_key", "required"),
]


@pytest.mark.parametrize(
    ("overrides", "column", "rule"), [case[1:] for case in BAD_ROWS], ids=[c[0] for c in BAD_ROWS]
)
def test_bad_row_is_refused_on_insert(
    refusing_conn: psycopg.Connection, overrides: dict[str, Any], column: str, rule: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_table(refusing_conn, "erp.public.orders", **overrides)
    message = refused.value.diag.message_primary or ""
    assert message.startswith(f"table_control.{column}: "), message
    assert rule in message
    assert refused.value.diag.column_name == column
    assert refused.value.diag.table_name == "table_control"


@pytest.mark.parametrize(
    ("overrides", "column", "rule"), [case[1:] for case in BAD_ROWS[:3]], ids=[c[0] for c in BAD_ROWS[:3]]
)
def test_bad_row_is_refused_on_update(
    control_conn: psycopg.Connection, overrides: dict[str, Any], column: str, rule: str
) -> None:
    insert_table(control_conn, "erp.public.orders")
    assignments = ", ".join(f"{name} = %({name})s" for name in overrides)
    with pytest.raises(psycopg.errors.CheckViolation, match=rf"^table_control\.{column}: {rule}"):
        control_conn.execute(
            f"UPDATE dataloader.table_control SET {assignments} WHERE control_key = 'erp.public.orders'",
            overrides,
        )


def test_update_that_breaks_a_strategy_rule_is_refused(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders", **INCREMENTAL)
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.incremental_column: required"):
        control_conn.execute("UPDATE dataloader.table_control SET incremental_column = NULL")


GOOD_CRONS = [
    "0 * * * *",
    "*/15 * * * *",
    "5/15 * * * *",
    "0,30 6-18 * * 1-5",
    "30 2 * * *",
    "0 0 1 jan,jul *",
    "0 3 * * SUN",
    "0 0 * * 7",
    "0-59/10 0-23/2 1-31 1-12 0-6",
    " 0  4 * * mon-fri ",
]


def test_valid_crons_are_accepted_here_and_by_croniter(control_conn: psycopg.Connection) -> None:
    for number, cron in enumerate(GOOD_CRONS):
        insert_table(control_conn, f"erp.public.t{number}", cron=cron)
        assert croniter.is_valid(cron.strip()), cron


GOOD_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("incremental", INCREMENTAL),
    ("incremental with integer lookback", {**INCREMENTAL, "incremental_lookback": "3600"}),
    ("incremental with interval lookback", {**INCREMENTAL, "incremental_lookback": "2 hours"}),
    ("append_only", {"load_strategy": "append_only", "incremental_column": "id"}),
    ("check_and_load", {"load_strategy": "check_and_load", "incremental_column": "id"}),
    ("rolling", ROLLING),
    ("chunked_backfill", BACKFILL),
    ("time zone", {"cron_timezone": "Europe/Amsterdam"}),
    (
        "odd source names",
        {
            "source_schema": 'My "Schema"',
            "source_table": "order lines; DROP",
            "load_strategy": "incremental",
            "incremental_column": "Last Update",
            "primary_keys": ["Order Id", 'x"y'],
        },
    ),
    ("deep destination", {"destination_table": "bronze/erp/Orders_2"}),
]


def test_good_rows_are_accepted(control_conn: psycopg.Connection) -> None:
    for number, (_, overrides) in enumerate(GOOD_ROWS):
        insert_table(control_conn, f"erp.public.t{number}", **overrides)
    row = control_conn.execute("SELECT count(*) FROM dataloader.table_control").fetchone()
    assert row == (len(GOOD_ROWS),)


def test_defaults(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders")
    row = control_conn.execute(
        "SELECT max_retries, retry_count, is_active, load_full, staging_model_processed, cron_timezone, "
        "manual_review, created_at IS NOT NULL, updated_at IS NOT NULL FROM dataloader.table_control"
    ).fetchone()
    assert row == (3, 0, True, False, False, "UTC", False, True, True)


def test_updated_at_is_maintained(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders")
    before = control_conn.execute("SELECT updated_at FROM dataloader.table_control").fetchone()
    control_conn.execute("UPDATE dataloader.table_control SET is_active = false")
    after = control_conn.execute("SELECT updated_at FROM dataloader.table_control").fetchone()
    assert before is not None and after is not None and after[0] > before[0]


DBCONFIG_BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"db_type": "db2"}, "db_type", "must be one of postgresql, mysql"),
    ({"db_type": None}, "db_type", "must be one of"),
    ({"db_kv_scope": "vault"}, "db_kv_scope", "must be one of env, file, literal"),
    ({"db_kv_scope": None}, "db_kv_scope", "must be one of env, file, literal"),
]


@pytest.mark.parametrize(
    ("overrides", "column", "rule"), DBCONFIG_BAD, ids=[f"{c[1]}={c[0][c[1]]}" for c in DBCONFIG_BAD]
)
def test_bad_source_is_refused(
    control_conn: psycopg.Connection, overrides: dict[str, Any], column: str, rule: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_source(control_conn, "erp", **overrides)
    message = refused.value.diag.message_primary or ""
    assert message.startswith(f"table_control_dbconfig.{column}: {rule}"), message


def test_every_db_type_and_scope_is_accepted(control_conn: psycopg.Connection) -> None:
    types = ["postgresql", "mysql", "mariadb", "sqlite", "mssql", "oracle", "snowflake", "clickhouse"]
    scopes = ["env", "file", "literal"]
    for number, db_type in enumerate(types):
        insert_source(control_conn, f"src_{db_type}", db_type=db_type, db_kv_scope=scopes[number % 3])
