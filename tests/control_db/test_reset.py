"""Resetting a failed table: the README's SQL recipe, as written there, and `dataloader reset`; the
README's other INSERT recipes pass the INSERT-time rules."""

from __future__ import annotations

import psycopg
import pytest
from control_rows import insert_table, readme_sql_statements

from control_db import cli

KEY = "erp.public.orders"
DIRTY = {
    "last_status": "Failed",
    "last_status_message": 'PermanentLoadError: source table "public"."orders" does not exist',
    "retry_count": 3,
    "manual_review": True,
    "manual_review_reason": "permanent error: missing table",
    "last_error_kind": "permanent",
    "last_error_code": "42P01",
    "next_load_date_time": "2099-01-01T00:00:00Z",
}
CLEAN = {
    "last_status": None,
    "last_status_message": None,
    "retry_count": 0,
    "manual_review": False,
    "manual_review_reason": None,
    "last_error_kind": None,
    "last_error_code": None,
    "next_load_date_time": None,
}


def readme_reset_sql() -> str:
    """The README's reset recipe: the one statement in its SQL blocks that sets `last_status = NULL`."""
    statements = [s for s in readme_sql_statements() if "last_status = NULL" in s]
    assert len(statements) == 1, statements
    return statements[0]


def _dirty_row(conn: psycopg.Connection, **overrides: object) -> None:
    insert_table(conn, KEY)
    values = {**DIRTY, **overrides}
    assignments = ", ".join(f"{name} = %({name})s" for name in values)
    conn.execute(f"UPDATE dataloader.table_control SET {assignments} WHERE control_key = '{KEY}'", values)


def _state(conn: psycopg.Connection) -> dict[str, object]:
    cursor = conn.execute(
        f"SELECT {', '.join(CLEAN)} FROM dataloader.table_control WHERE control_key = %s", (KEY,)
    )
    row = cursor.fetchone()
    assert row is not None
    return dict(zip(CLEAN, row, strict=True))


def test_readme_reset_recipe_leaves_a_clean_row(control_conn: psycopg.Connection) -> None:
    _dirty_row(control_conn)
    sql = readme_reset_sql()
    assert f"'{KEY}'" in sql  # the recipe names the README's example table
    control_conn.execute(sql)
    assert _state(control_conn) == CLEAN


@pytest.mark.parametrize("status", ["Queued", "In Progress"])
def test_readme_reset_recipe_leaves_a_running_row_alone(
    control_conn: psycopg.Connection, status: str
) -> None:
    _dirty_row(control_conn, last_status=status)
    control_conn.execute(readme_reset_sql())
    assert _state(control_conn)["last_status"] == status
    assert _state(control_conn)["manual_review_reason"] == DIRTY["manual_review_reason"]


def test_reset_command_cleans_the_row(
    control_conn: psycopg.Connection, control_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    _dirty_row(control_conn)
    assert cli.main(["reset", KEY]) == 0
    assert (
        capsys.readouterr().out.strip()
        == f"{KEY}: reset (was Failed); it loads on the next master-sensor tick"
    )
    assert _state(control_conn) == CLEAN
    history = control_conn.execute(
        "SELECT change_source FROM dataloader.table_control_history ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert history == ("dataloader-cli",)


@pytest.mark.parametrize("status", ["Queued", "In Progress"])
def test_reset_command_refuses_a_running_row(
    control_conn: psycopg.Connection,
    control_db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys,
    status: str,
) -> None:
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    _dirty_row(control_conn, last_status=status)
    assert cli.main(["reset", KEY]) == 1
    assert capsys.readouterr().err.strip() == (
        f"dataloader reset: {KEY} is {status}; wait for its run to finish (or fail) and reset it then"
    )
    assert _state(control_conn)["last_status"] == status


def test_reset_command_names_an_unknown_key(
    control_conn: psycopg.Connection, control_db_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    assert cli.main(["reset", "no.such.key"]) == 1
    assert (
        capsys.readouterr().err.strip() == "dataloader reset: no control row with control_key 'no.such.key'"
    )


def test_readme_insert_recipes_pass_the_rules(control_conn: psycopg.Connection) -> None:
    inserts = [s for s in readme_sql_statements() if "INSERT INTO" in s]
    assert len(inserts) >= 7  # the source, the first table, one per other strategy
    for statement in inserts:
        control_conn.execute(statement)
    row = control_conn.execute("SELECT count(*) FROM dataloader.table_control").fetchone()
    assert row == (len(inserts) - 1,)
