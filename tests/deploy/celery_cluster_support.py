"""Helpers of the Celery cluster test: sources and control rows, the cluster's processes, and what
the Dagster instance, Celery and Delta say afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from dagster import DagsterInstance, DagsterRun

ROOT = Path(__file__).resolve().parents[2]
HOSTS_SCRIPT = ROOT / "scripts" / "celery_hosts.py"
TASK_ID_TAG = "dagster-celery/task_id"
SOURCE_TAG = "dataloader/source"
STRATEGIES = ("full", "incremental", "append_only")


@dataclass(frozen=True)
class Table:
    control_key: str
    source_url: str
    source_table: str  # what the Delta table must equal (the slow view's base table for it)
    destination: str


def create_database(admin_url: str, prefix: str) -> str:
    """A fresh database on the admin URL's server; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, url: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path.lstrip("/")}" WITH (FORCE)')


def _config(url: str) -> str:
    parts = urlsplit(url)
    return json.dumps({"host": parts.hostname, "port": parts.port or 5432,
                       "database": parts.path.lstrip("/"), "user": parts.username or "postgres"})  # fmt: skip


def add_source(control: psycopg.Connection, key: str, url: str) -> None:
    control.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, 'postgresql', %s::jsonb, 'literal')",
        (key, _config(url)),
    )


def add_row(control: psycopg.Connection, key: str, source: str, table: str, strategy: str) -> str:
    """One control row loading public.`table` of `source` with `strategy`; returns its destination."""
    destination = f"bronze/{source}/{table}"
    column = {"incremental": "updated_at", "append_only": "id"}.get(strategy)
    control.execute(
        "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, source_table, "
        "destination_table, load_strategy, cron, primary_keys, incremental_column) "
        "VALUES (%s, %s, 'public', %s, %s, %s, '0 0 1 1 *', ARRAY['id'], %s)",
        (key, source, table, destination, strategy, column),
    )
    return destination


def create_source_table(source: psycopg.Connection, table: str, rows: int) -> None:
    source.execute(
        f"CREATE TABLE {table} (id integer PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now())"
    )
    source.execute(
        f"INSERT INTO {table} (id, v) SELECT g, md5(g::text) FROM generate_series(1, %s) g", (rows,)
    )


def create_slow_view(source: psycopg.Connection, rows: int) -> None:
    """`slow_view`: the rows of `slow_base`, served after sleeping `slow_setting.seconds` (one UPDATE
    makes it fast without a lock on the view, which the sleeping read holds)."""
    create_source_table(source, "slow_base", rows)
    # A backend notices a vanished client only when it next writes to it, so a sleeping read would
    # outlive its killed worker; checked every second, the query ends with its client.
    source.execute(f'ALTER DATABASE "{source.info.dbname}" SET client_connection_check_interval = 1000')
    source.execute("CREATE TABLE slow_setting (seconds float NOT NULL)")
    source.execute("INSERT INTO slow_setting VALUES (900)")
    source.execute(
        "CREATE FUNCTION slow_rows() RETURNS SETOF slow_base LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM pg_sleep(seconds) FROM slow_setting; RETURN QUERY SELECT * FROM slow_base ORDER BY id; END $$"
    )
    source.execute("CREATE VIEW slow_view AS SELECT * FROM slow_rows()")


def hosts_script(*args: str, timeout: float = 240) -> str:
    """Run scripts/celery_hosts.py with this process's environment; its stdout."""
    done = subprocess.run(
        [sys.executable, str(HOSTS_SCRIPT), *args], capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"celery_hosts.py {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def instance_for(home: Path) -> DagsterInstance:
    """A Dagster instance on the cluster's storage and Celery app (the deployment's dagster.yaml)."""
    return DagsterInstance.from_config(str(home))


def task_worker(instance: DagsterInstance, run: DagsterRun) -> tuple[str | None, str, int | None]:
    """(worker host name, Celery task state, pool process pid) of the run's task (None when unknown)."""
    task_id = run.tags.get(TASK_ID_TAG)
    if task_id is None:
        return None, "NO TASK", None
    result = instance.run_launcher.celery.AsyncResult(task_id)  # type: ignore[attr-defined]
    state = result.state
    info = result.info if isinstance(result.info, dict) else {}
    worker = result.worker or info.get("hostname")
    return (worker.split("@")[0] if worker else None), state, info.get("pid")


def max_concurrent(intervals: list[tuple[float, float]]) -> int:
    """The most intervals (start, end) open at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, step in edges:
        open_now += step
        peak = max(peak, open_now)
    return peak


def child_pids(parent: int) -> list[int]:
    """Processes whose parent is `parent`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == parent:
                found.append(int(entry))
    return found


def alive(pid: int, started: str) -> bool:
    """Whether process `pid` still runs and is the one that started at `started` (stat field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return stat[0] != "Z" and stat[19] == started


def start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def epoch(value: datetime | float | None) -> float | None:
    if value is None:
        return None
    return value if isinstance(value, float) else value.timestamp()
