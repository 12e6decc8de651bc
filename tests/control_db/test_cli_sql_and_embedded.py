"""`dataloader sql` runs statements through psql; without DATALOADER_CONTROL_DB_URL the CLI finds the embedded server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from control_rows import insert_table

from control_db import cli, embedded
from control_db.migrate import upgrade

DATALOADER = str(Path(sys.executable).parent / "dataloader")
ROOT = Path(__file__).resolve().parents[2]


def _sql(statement: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DATALOADER, "sql", statement], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_sql_prints_rows_and_records_a_person(control_conn: psycopg.Connection, control_db_url: str) -> None:
    insert_table(control_conn, "erp.public.orders")
    env = {**os.environ, "DATALOADER_CONTROL_DB_URL": control_db_url}

    done = _sql(
        "UPDATE dataloader.table_control SET is_active = false; SELECT control_key, is_active "
        "FROM dataloader.table_control",
        env,
    )

    assert done.returncode == 0, done.stderr
    assert "erp.public.orders | f" in done.stdout and "(1 row)" in done.stdout
    (source,) = control_conn.execute(
        "SELECT change_source FROM dataloader.table_control_history WHERE change_type = 'UPDATE'"
    ).fetchone()
    assert source == "psql"  # as for any person at a SQL prompt


def test_sql_error_names_the_column_and_fails(control_conn: psycopg.Connection, control_db_url: str) -> None:
    insert_table(control_conn, "erp.public.orders")
    env = {**os.environ, "DATALOADER_CONTROL_DB_URL": control_db_url}
    done = _sql("UPDATE dataloader.table_control SET load_strategy = 'nightly'", env)
    assert done.returncode != 0
    assert "load_strategy" in done.stderr


def test_psql_gets_the_password_through_its_environment() -> None:
    command, env = cli.psql_command("postgresql://loader:s3cret@db.example.com:5433/control", "SELECT 1")
    assert not any("s3cret" in part for part in command)
    assert env == {"PGPASSWORD": "s3cret"}
    assert command[-2:] == ["-c", "SELECT 1"]
    (conninfo,) = [part for part in command if "dbname=" in part]
    assert "host=db.example.com" in conninfo and "port=5433" in conninfo and "dbname=control" in conninfo


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def embedded_data_dir() -> Iterator[Path]:
    """A real embedded server (as `make dev` starts it) with a migrated `dataloader` database."""
    # Under the checkout, not pytest's tmp: pytest re-chmods /tmp/pytest-of-<user> to 0700 when any
    # session starts, which would lock the server's own user out of its data directory.
    data_dir = ROOT / ".dataloader" / f"pgdata-cli-test-{uuid.uuid4().hex[:8]}"
    try:
        admin_url = embedded.ensure_running(data_dir, _free_port())
    except subprocess.CalledProcessError:
        log = data_dir / "server.log"
        pytest.fail(f"embedded server did not start: {log.read_text() if log.exists() else 'no log'}")
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE dataloader")
        upgrade(embedded.running_url(data_dir) or "")
        yield data_dir
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


def test_cli_uses_the_running_embedded_server(
    embedded_data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = embedded.running_url(embedded_data_dir)
    assert url is not None and url.endswith("/dataloader")
    with psycopg.connect(url, autocommit=True) as conn:
        insert_table(conn, "erp.public.orders")
    monkeypatch.delenv("DATALOADER_CONTROL_DB_URL", raising=False)
    monkeypatch.setenv("DATALOADER_EMBEDDED_PGDATA", str(embedded_data_dir))

    assert cli.main(["status"]) == 0
    out, err = capsys.readouterr()
    assert "erp.public.orders" in out
    assert err.splitlines() == [
        f"dataloader: not set in this shell, using make dev's: DATALOADER_CONTROL_DB_URL={url} (the embedded server)"
    ]  # `status` writes no Delta table: no lake is looked for

    fresh_shell = {name: value for name, value in os.environ.items() if name != "DATALOADER_CONTROL_DB_URL"}
    done = _sql("SELECT count(*) AS tables FROM dataloader.table_control", fresh_shell)
    assert done.returncode == 0, done.stderr
    assert "(the embedded server)" in done.stderr and "(1 row)" in done.stdout


def test_a_stopped_embedded_server_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "postmaster.pid").write_text(f"1\n{tmp_path}\n0\n{_free_port()}\n")  # stale: nobody listens
    assert embedded.running_url(tmp_path) is None
    assert embedded.running_url(tmp_path / "missing") is None


def test_the_command_exits_with_mains_code_and_its_output_flushed() -> None:
    """The console script leaves without interpreter teardown (control_db.cli.run): the exit code
    and every line written before it still arrive."""
    env = {**os.environ, "DATALOADER_CONTROL_DB_URL": "postgresql://nobody@127.0.0.1:1/control"}
    done = subprocess.run([DATALOADER, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("dataloader: control database unreachable:"), done.stderr
