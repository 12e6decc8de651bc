"""Bad rows are refused at INSERT/UPDATE time with `<table>.<column>: <rule>` (SQLSTATE 23514)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from control_rows import BACKFILL, INCREMENTAL, insert_source, insert_table, rules_of_0003_disabled
from croniter import CroniterBadDateError, croniter

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
    ("cron with 4 fields", {"cron": "0 * * *"}, "cron", "must be a 5-field cron expression (minute hour "),
    ("cron with 6 fields", {"cron": "0 0 * * * *"}, "cron", "not 6 field(s) (got '0 0 * * * *')"),
    # Five fields with one wrong: the refusal names the field and its range (issue 19).
    (
        "cron minute out of range",
        {"cron": "61 3 * * *"},
        "cron",
        "minute 61 is out of range 0-59 (got '61 3 * * *')",
    ),
    ("cron hour out of range", {"cron": "0 24 * * *"}, "cron", "hour 24 is out of range 0-23"),
    ("cron day 0", {"cron": "0 0 0 * *"}, "cron", "day-of-month 0 is out of range 1-31"),
    ("cron month 13 in a list", {"cron": "0 0 1 1,13 *"}, "cron", "month 13 is out of range 1-12"),
    ("cron day of week 8", {"cron": "0 0 * * 1-8"}, "cron", "day-of-week 8 is out of range 0-7"),
    ("cron three-digit minute", {"cron": "100 * * * *"}, "cron", "minute 100 is out of range 0-59"),
    (
        "cron unknown month name",
        {"cron": "0 0 1 FOO *"},
        "cron",
        "month 'FOO' is not a number 1-12 or a name JAN-DEC",
    ),
    ("cron name in minute", {"cron": "MON * * * *"}, "cron", "minute 'MON' is not a number 0-59"),
    ("cron reversed range", {"cron": "0 5-1 * * *"}, "cron", "hour range 5-1 runs backwards"),
    ("cron zero step", {"cron": "*/0 * * * *"}, "cron", "minute step 0 is out of range 1-59"),
    ("cron bad item", {"cron": "0 1-2-3 * * *"}, "cron", "hour item '1-2-3' is not *, a number 0-23"),
    ("cron garbage", {"cron": "every hour"}, "cron", "must be a 5-field cron expression"),
    ("cron null", {"cron": None}, "cron", "must be a 5-field cron expression"),
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
    # A negative lookback starts the read past the watermark: the rows in between are never loaded.
    (
        "negative integer lookback",
        {**INCREMENTAL, "incremental_lookback": "-5"},
        "incremental_lookback",
        "must not be negative",
    ),
    (
        "negative interval lookback",
        {**INCREMENTAL, "incremental_lookback": "-2 hours"},
        "incremental_lookback",
        "must not be negative",
    ),
    (
        "negative clock lookback",
        {**INCREMENTAL, "incremental_lookback": "-00:05"},
        "incremental_lookback",
        "must not be negative",
    ),
    (
        "lookback with a negative part",
        {**INCREMENTAL, "incremental_lookback": "1 day -2 hours"},
        "incremental_lookback",
        "must not be negative",
    ),
    (
        "lookback 'ago'",
        {**INCREMENTAL, "incremental_lookback": "2 hours ago"},
        "incremental_lookback",
        "must not be negative",
    ),
    # A cron that never fires: the load commits, then no next fire can be computed.
    ("cron on 31 February", {"cron": "0 0 31 2 *"}, "cron", "never fires"),
    ("cron on 30 February", {"cron": "0 0 30 2 *"}, "cron", "never fires"),
    ("cron on 31 April and June", {"cron": "0 0 31 4,6 *"}, "cron", "never fires"),
    ("cron on 30/31 February by name", {"cron": "0 0 30,31 feb *"}, "cron", "never fires"),
    ("cron with star among days of week", {"cron": "0 0 31 2 *,1"}, "cron", "never fires"),
    *[
        (f"newline in {column}", {**INCREMENTAL, column: value}, column, "control characters")
        for column, value in [
            ("control_key", "bi.key\nDROP TABLE t; --"),
            ("source_schema", "public\n"),
            ("source_table", "orders\rx"),
            ("incremental_column", "updated_at\x1b[2J"),
        ]
    ],
    (
        "tab in a primary key",
        {**INCREMENTAL, "primary_keys": ["id", "x\ty"]},
        "primary_keys",
        "control characters",
    ),
    (
        "DEL in rolling_column",
        {**ROLLING, "rolling_column": "day\x7f"},
        "rolling_column",
        "control characters",
    ),
    ("newline in chunk_column", {**BACKFILL, "chunk_column": "id\n--"}, "chunk_column", "control characters"),
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


def test_cron_problem_refuses_exactly_what_cron_is_valid_refuses(refusing_conn: psycopg.Connection) -> None:
    """0008's named refusals (cron_problem) and 0001's cron_is_valid, still the gate of the other
    rules, must agree on every cron."""
    crons = [
        *GOOD_CRONS,
        *(case[1]["cron"] for case in BAD_ROWS if case[2] == "cron"),
        "",
        "  ",
        "0 0 1-31/40 * *",
    ]
    crons += [
        "7/5 * * * *",
        "0 0 * JAN-dec *",
        "0 0 * * sat-sun",
        "0 0 * * 007",
        "1,2,,3 * * * *",
        "* * * * MONDAY",
    ]
    for cron in crons:
        problem, valid = refusing_conn.execute(
            "SELECT dataloader.cron_problem(%s), dataloader.cron_is_valid(%s)", (cron, cron)
        ).fetchone()
        assert (problem is None) == bool(valid), (cron, problem)


def test_update_to_an_out_of_range_cron_names_the_field(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders")
    with pytest.raises(
        psycopg.errors.CheckViolation,
        match=r"^table_control\.cron: minute 61 is out of range 0-59 \(got '61 3 \* \* \*'\)\n",
    ):
        control_conn.execute("UPDATE dataloader.table_control SET cron = '61 3 * * *'")


def test_control_character_refusal_names_the_character_and_never_prints_it(
    refusing_conn: psycopg.Connection,
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_table(refusing_conn, "bi.key\nDROP TABLE t; --", destination_table="bronze/bi/key")
    message = refused.value.diag.message_primary or ""
    assert message == (
        "table_control.control_key: must not contain control characters (U+0000-U+001F, U+007F): "
        "U+000A at position 7"
    )


def test_update_to_a_never_firing_cron_is_refused(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders")
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.cron: never fires"):
        control_conn.execute("UPDATE dataloader.table_control SET cron = '0 0 31 2 *'")


def test_row_stored_before_the_rules_keeps_taking_status_updates(control_conn: psycopg.Connection) -> None:
    with rules_of_0003_disabled(control_conn):
        insert_table(
            control_conn,
            "erp.public.orders",
            **INCREMENTAL,
            incremental_lookback="-5",
            cron="0 0 31 2 *",
            source_table="orders\n",
        )
    control_conn.execute("UPDATE dataloader.table_control SET last_status = 'Queued', retry_count = 1")
    problems = control_conn.execute(
        "SELECT p.column_name FROM dataloader.table_control AS tc, "
        "dataloader.table_control_value_problems(tc, NULL::dataloader.table_control) AS p"
    ).fetchall()
    assert sorted(problems) == [("cron",), ("incremental_lookback",), ("source_table",)]
    with pytest.raises(
        psycopg.errors.CheckViolation, match=r"^table_control\.incremental_lookback: must not"
    ):
        control_conn.execute("UPDATE dataloader.table_control SET incremental_lookback = '-6'")


CRONS_AGAINST_CRONITER = [
    "0 0 31 2 *",
    "0 0 29 2 *",
    "0 0 31 2 1",
    "0 0 31 2 MON",
    "0 0 31 2 */2",
    "0 0 31 2 0-6",
    "0 0 31 2 7",
    "0 0 31 2 *,1",
    "0 0 31 4,6 *",
    "0 0 31 4,6,7 *",
    "0 0 30,31 2 *",
    "0 0 1-31/30 2 *",
    "0 0 */31 2 *",
    "0 0 31 */2 *",
    "0 0 31 2-4/2 *",
    "0 0 31 9-11/2 *",
    "0 0 31 jan-feb/1 *",
    "0 0 * 2 *",
]


def test_never_firing_crons_are_exactly_those_croniter_cannot_schedule(
    control_conn: psycopg.Connection,
) -> None:
    # mark_succeeded computes the next fire with croniter: every cron accepted here must have one.
    for number, cron in enumerate(CRONS_AGAINST_CRONITER):
        try:
            croniter(cron, datetime(2026, 12, 1, tzinfo=UTC)).get_next(datetime)
            fires = True
        except CroniterBadDateError:
            fires = False
        try:
            insert_table(control_conn, f"erp.public.t{number}", cron=cron)
            accepted = True
        except psycopg.errors.CheckViolation as refused:
            assert "never fires" in str(refused), refused
            accepted = False
        assert accepted == fires, cron


GOOD_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("incremental", INCREMENTAL),
    ("incremental with integer lookback", {**INCREMENTAL, "incremental_lookback": "3600"}),
    ("incremental with interval lookback", {**INCREMENTAL, "incremental_lookback": "2 hours"}),
    ("incremental with clock lookback", {**INCREMENTAL, "incremental_lookback": "00:05"}),
    ("incremental with zero lookback", {**INCREMENTAL, "incremental_lookback": "0"}),
    ("cron on 29 February", {"cron": "0 0 29 2 *"}),
    ("cron on 31 February or a Monday", {"cron": "0 0 31 2 1"}),
    ("unicode names", {"source_table": "Bestellungen é ü 表", "destination_table": "bronze/erp/groesse"}),
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
