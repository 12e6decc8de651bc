"""`dataloader validate`: control rows checked against live PostgreSQL and MariaDB sources, nothing loaded."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from loadtest_support import ODD, SourceDB, insert_control_row
from psycopg.types.json import Jsonb

from control_db import cli
from pipes_workers.validate import validate_control_rows

BIG_DECIMAL = {"postgresql": "numeric(50,2)", "mariadb": "decimal(65,2)"}


def add_source(conn: psycopg.Connection, key: str, db_type: str, scope: str, value: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, %s, %s, %s)",
        (key, db_type, Jsonb(value), scope),
    )


@pytest.fixture
def rows(control_conn: psycopg.Connection, source: SourceDB) -> dict[str, str]:
    """Control rows on `source`, each with at most one kind of problem; name -> control_key."""
    config = source.config()
    add_source(control_conn, "src", source.db_type, "literal", config.config)
    events = source.events_table()
    wide = f"wide_{uuid.uuid4().hex[:8]}"
    source.execute(f"CREATE TABLE {source.quote(wide)} (id bigint, big {BIG_DECIMAL[source.db_type]})")
    keys = {
        "ok": insert_control_row(control_conn, "a.ok", "src", events),
        "ok_backfill": insert_control_row(
            control_conn,
            "b.ok_backfill",
            "src",
            events,
            load_strategy="chunked_backfill",
            chunk_column="event_date",
            chunk_size=30,
        ),
        "missing_columns": insert_control_row(
            control_conn,
            "c.missing_columns",
            "src",
            events,
            incremental_column="nope",
            primary_keys=["id", "no_pk"],
        ),
        "missing_table": insert_control_row(control_conn, "d.missing_table", "src", "no_such_table"),
        "unsupported_type": insert_control_row(
            control_conn, "e.unsupported_type", "src", wide, load_strategy="full"
        ),
        "rolling_on_decimal": insert_control_row(
            control_conn,
            "f.rolling_on_decimal",
            "src",
            events,
            load_strategy="rolling",
            rolling_column="amount",
            rolling_window_days=7,
        ),
        "chunks_on_text": insert_control_row(
            control_conn,
            "g.chunks_on_text",
            "src",
            events,
            load_strategy="chunked_backfill",
            chunk_column=ODD,
            chunk_size=10,
        ),
        "bad_watermark": insert_control_row(
            control_conn, "h.bad_watermark", "src", events, incremental_value="yesterday"
        ),
    }
    insert_control_row(control_conn, "z.inactive", "src", "no_such_table", is_active=False)
    # A source whose driver is not installed, and one whose secret is not set.
    add_source(control_conn, "ora", "oracle", "literal", {"host": "127.0.0.1", "port": 1, "database": "ORCL"})
    keys["no_driver"] = insert_control_row(control_conn, "i.no_driver", "ora", "orders", load_strategy="full")
    add_source(
        control_conn, "env", source.db_type, "env", {"host": "DL_TEST_UNSET_HOST", "database": "DL_DB"}
    )
    keys["no_secret"] = insert_control_row(control_conn, "j.no_secret", "env", events, load_strategy="full")
    return keys


def test_every_problem_is_one_line_naming_table_column_and_rule(
    rows: dict[str, str], control_db_url: str, source: SourceDB, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("DL_TEST_UNSET_HOST", raising=False)
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    assert cli.main(["validate"]) == 1
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    lines = out.out.splitlines()
    by_key = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[:-1]}
    assert sorted(by_key) == sorted(rows.values())  # one line per active row; the inactive row is not checked
    assert lines[-1] == f"({len(rows)} rows checked, {len(rows) - 2} with problems)"

    assert by_key[rows["ok"]] == "OK"
    assert by_key[rows["ok_backfill"]] == "OK"
    q = source.quote
    events = q(by_key_table(rows, "ok", control_db_url))
    assert by_key[rows["missing_columns"]] == (
        f"source table {events}: incremental_column 'nope' is not a column; "
        f"source table {events}: primary_keys 'no_pk' is not a column"
    )
    assert "no_such_table" in by_key[rows["missing_table"]]
    assert "does not exist" in by_key[rows["missing_table"]]
    assert (
        "'big'" in by_key[rows["unsupported_type"]] and "decimal" in by_key[rows["unsupported_type"]].lower()
    )
    assert by_key[rows["rolling_on_decimal"]].startswith(
        f"source table {events}: rolling_column 'amount' must"
    )
    assert "must be a date or timestamp" in by_key[rows["rolling_on_decimal"]]
    assert by_key[rows["chunks_on_text"]].startswith(f"source table {events}: chunk_column {ODD!r} (")
    assert "cannot be cut into chunks" in by_key[rows["chunks_on_text"]]
    assert by_key[rows["bad_watermark"]].startswith(
        f"source table {events}: incremental_column 'updated_at' ("
    )
    assert "'yesterday'" in by_key[rows["bad_watermark"]]
    assert "oracle" in by_key[rows["no_driver"]].lower()
    assert "DL_TEST_UNSET_HOST" in by_key[rows["no_secret"]] and "not set" in by_key[rows["no_secret"]]


def by_key_table(rows: dict[str, str], name: str, control_db_url: str) -> str:
    with psycopg.connect(control_db_url) as conn:
        row = conn.execute(
            "SELECT source_table FROM dataloader.table_control WHERE control_key = %s", (rows[name],)
        ).fetchone()
    assert row is not None
    return row[0]


def test_one_named_row(
    rows: dict[str, str], control_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    assert cli.main(["validate", rows["ok"]]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{rows['ok']}: OK", "(1 row checked, 0 with problems)"]
    # A named row is checked even when inactive.
    assert [c.control_key for c in validate_control_rows(control_db_url, "z.inactive")] == ["z.inactive"]
    assert cli.main(["validate", "no.such.key"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "dataloader validate: no control row with control_key 'no.such.key'"
    )


def test_secrets_never_reach_the_output(
    control_conn: psycopg.Connection,
    control_db_url: str,
    source: SourceDB,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    planted = "Pl4nted-validate-secret"
    config = {**source.config().config, "user": "dl_nobody", "password": planted}
    add_source(control_conn, "wrong", source.db_type, "literal", config)
    insert_control_row(control_conn, "k.wrong_password", "wrong", "whatever", load_strategy="full")
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    assert cli.main(["validate"]) == 1
    out = capsys.readouterr()
    assert out.out.startswith("k.wrong_password: ")
    assert planted not in out.out + out.err


def test_rules_a_stored_row_breaks_are_reported(
    control_conn: psycopg.Connection, control_db_url: str, source: SourceDB
) -> None:
    # A row and config stored before migration 0003 (its triggers off) were never checked.
    events = source.events_table()
    for table in ("table_control", "table_control_dbconfig"):
        control_conn.execute(f"ALTER TABLE dataloader.{table} DISABLE TRIGGER a_validate_values")
    try:
        add_source(control_conn, "old", source.db_type, "literal", {**source.config().config, "port": 0})
        insert_control_row(control_conn, "old.row", "old", events, incremental_lookback="-5")
    finally:
        for table in ("table_control", "table_control_dbconfig"):
            control_conn.execute(f"ALTER TABLE dataloader.{table} ENABLE TRIGGER a_validate_values")
    [check] = validate_control_rows(control_db_url, "old.row")
    assert check.problems[:2] == (
        "table_control.incremental_lookback: must not be negative: NULL, a non-negative integer or an "
        "interval such as '2 hours' (got '-5')",
        "table_control_dbconfig.db_config_value: key 'port' must be an integer 1..65535",
    )
