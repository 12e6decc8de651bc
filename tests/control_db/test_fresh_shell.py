"""A fresh shell beside `make dev` needs no setup: `dataloader load` and `dataloader maintain` with no
DATALOADER_* variable find make dev's embedded server and its lake (issue 19)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.types.json import Jsonb

from control_db import dev_settings, embedded
from control_db.migrate import upgrade

DATALOADER = str(Path(sys.executable).parent / "dataloader")
ROOT = Path(__file__).resolve().parents[2]
PORTS = range(7300, 7400)  # this suite's own range on a shared machine
KEY = "demo.main.orders"


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    pytest.skip(f"no free port in {PORTS}")


@pytest.fixture(scope="module")
def dev_project() -> Iterator[Path]:
    """A checkout as `make dev` leaves it: `.dataloader/pgdata` serving a migrated `dataloader`
    database, `.dataloader/dev.json` recorded, a SQLite demo source and one control row."""
    # Under the checkout, not pytest's tmp (see test_cli_sql_and_embedded.embedded_data_dir).
    project = ROOT / ".dataloader" / f"fresh-shell-{uuid.uuid4().hex[:8]}"
    state = project / embedded.STATE_DIR
    data_dir = state / "pgdata"
    try:
        embedded.ensure_running(data_dir, _free_port())
        url = embedded.running_url(data_dir, "postgres")
        assert url is not None
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE dataloader")
        control_url = embedded.running_url(data_dir) or ""
        upgrade(control_url)
        source = project / "demo.sqlite"
        with sqlite3.connect(source) as db:
            db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
            db.executemany("INSERT INTO orders VALUES (?, ?)", [(i, i * 1.5) for i in range(1, 6)])
        with psycopg.connect(control_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_kv_scope, "
                "db_config_value) VALUES ('demo', 'sqlite', 'literal', %s)",
                (Jsonb({"path": str(source)}),),
            )
            conn.execute(
                "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, "
                "source_table, destination_table, load_strategy, cron) "
                "VALUES (%s, 'demo', 'main', 'orders', 'bronze/demo/orders', 'full', '0 3 * * *')",
                (KEY,),
            )
        # What scripts/dev.py records before it starts Dagster.
        dev_settings.record(state, control_db_url=control_url, lake_root=str(state / "lake"))
        yield project
    finally:
        embedded.stop(data_dir)
        shutil.rmtree(project, ignore_errors=True)


def _fresh_shell(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        [DATALOADER, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_load_and_maintain_in_a_fresh_shell_find_make_devs_server_and_lake(dev_project: Path) -> None:
    url = embedded.running_url(dev_project / ".dataloader" / "pgdata")
    lake = dev_project / ".dataloader" / "lake"

    loaded = _fresh_shell(dev_project, "load", KEY)

    assert loaded.returncode == 0, loaded.stderr
    told = [line for line in loaded.stderr.splitlines() if "make dev" in line]
    assert told == [
        f"dataloader: not set in this shell, using make dev's: DATALOADER_CONTROL_DB_URL={url} "
        f"(the embedded server), DATALOADER_LAKE_ROOT={lake}"
    ], loaded.stderr
    assert f"{KEY}: Succeeded, 5 rows" in loaded.stdout
    assert (lake / "bronze" / "demo" / "orders" / "_delta_log").is_dir()

    maintained = _fresh_shell(dev_project, "maintain", KEY)

    assert maintained.returncode == 0, maintained.stderr
    assert [line for line in maintained.stderr.splitlines() if "make dev" in line] == told
    assert "set DATALOADER" not in maintained.stderr


def test_a_lake_recorded_for_another_control_database_is_not_used(
    dev_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dev_project)
    url = embedded.running_url(dev_project / ".dataloader" / "pgdata") or ""
    assert dev_settings.recorded_lake_root(url) == str(dev_project / ".dataloader" / "lake")
    other = "postgresql://postgres@127.0.0.1:1/other"
    assert dev_settings.recorded_lake_root(other) is None

    env = {"DATALOADER_CONTROL_DB_URL": other}
    dev_settings.use_dev_settings_when_unset(environ=env)

    assert "DATALOADER_LAKE_ROOT" not in env
    assert dev_settings.missing("DATALOADER_CONTROL_DB_URL", "DATALOADER_LAKE_ROOT", environ=env) == (
        "set DATALOADER_LAKE_ROOT (a shell beside a running `make dev` finds its embedded server and lake "
        "by itself)"
    )
