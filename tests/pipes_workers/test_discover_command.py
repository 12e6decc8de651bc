"""`dataloader discover` as a command: registered in the `dataloader` CLI, its output a runnable SQL
script, and --apply all-or-nothing when the control database refuses a row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
from discover_support import add_source, control_rows

from control_db import cli
from dataloader_contract.request import SourceConfig


@pytest.fixture
def lite(
    tmp_path: Path, control_conn: psycopg.Connection, control_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A SQLite source with three tables, registered as `lite`; the command's environment set."""
    path = tmp_path / "lite.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE b (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute('CREATE TABLE "c; DROP TABLE x" (v TEXT)')
    add_source(control_conn, SourceConfig("lite", "sqlite", "literal", {"path": str(path)}))
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    return "lite"


def test_a_refused_row_applies_nothing(
    lite: str, control_conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["discover", lite, "--cron", "61 * * * *", "--apply"]) == 1
    err = capsys.readouterr().err
    assert "nothing applied" in err and "cron" in err
    assert control_rows(control_conn) == []


def test_printed_script_runs_as_is(
    lite: str, control_conn: psycopg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["discover", lite]) == 0
    script = capsys.readouterr().out
    assert script.count("INSERT INTO dataloader.table_control") == 3
    control_conn.execute(script.encode())  # what `psql -f` would run: comments and the INSERTs
    rows = control_rows(control_conn)
    assert [(r["source_table"], r["load_strategy"], r["is_active"]) for r in rows] == [
        ("a", "full", False), ("b", "full", False), ("c; DROP TABLE x", "full", False),
    ]  # fmt: skip
    assert rows[2]["destination_table"] == "bronze/lite/main/c_drop_table_x"
    assert cli.main(["discover", lite, "--apply"]) == 0  # everything registered: nothing to add
    out = capsys.readouterr().out
    assert "-- 0 new control rows" in out and "applied" not in out
    assert len(control_rows(control_conn)) == 3
