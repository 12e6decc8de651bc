"""The Celery deployment (deploy/celery, scripts/celery_hosts.py) end to end on this machine.

A gRPC code server, `dagster-daemon run` with the CeleryRunLauncher and three Celery worker hosts
(each its own process session, folder and DAGSTER_HOME) load 30 tables of 3 PostgreSQL sources into
a lake on the S3 emulator over the real RabbitMQ and Redis, plus one slow table (a view that sleeps)
that the long-running monitor must stop. Mid-batch one host is SIGKILLed with all its processes.
Checked: every table Succeeded with its Delta table equal to its source (no key lost, none twice),
runs spread over several hosts, never more than 2 runs of one source at a time, the terminated run
really stopped on its host (run finished, its Pipes worker and source query gone), the killed
host's tables failed by a monitor and loaded by a retry, and no process left behind at the end.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import psycopg
import pytest
from celery_cluster_support import (
    ROOT,
    SOURCE_TAG,
    STRATEGIES,
    Table,
    add_row,
    add_source,
    create_database,
    create_slow_view,
    create_source_table,
    drop_database,
    epoch,
    hosts_script,
    instance_for,
    max_concurrent,
    task_worker,
)
from celery_cluster_watch import SLOW_KEY, SLOW_SOURCE, Watch, in_flight
from dagster import DagsterInstance, DagsterRunStatus
from delta_compare import delta_vs_source

from control_db.urls import sqlalchemy_url

SOURCES, TABLES_PER_SOURCE, ROWS, HOSTS = 3, 10, 300, 3
THRESHOLD_S = 60  # DATALOADER_LONGRUNNING_THRESHOLD_S: far above a normal load here, below the slow one
DEADLINE_S = 420
RECOVERY_CODES = {"run_lost", "worker_died", "run_failed", "queued_run_lost"}


def _require_servers() -> None:
    for name, port in (("RabbitMQ", 5672), ("Redis", 6379)):
        with socket.socket() as sock:
            sock.settimeout(2)
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                reason = f"{name} unreachable at 127.0.0.1:{port}: the Celery deployment needs it"
                if os.environ.get("CI", "").lower() == "true":
                    pytest.fail(reason)
                pytest.skip(reason)


def _seed(control: psycopg.Connection, sources: list[str]) -> list[Table]:
    tables = []
    for s, url in enumerate(sources):
        add_source(control, f"src{s}", url)
        with psycopg.connect(url, autocommit=True) as source:
            for t in range(TABLES_PER_SOURCE):
                name, key = f"t{t:02}", f"src{s}.t{t:02}"
                create_source_table(source, name, ROWS)
                strategy = STRATEGIES[(s * TABLES_PER_SOURCE + t) % len(STRATEGIES)]
                tables.append(Table(key, url, name, add_row(control, key, f"src{s}", name, strategy)))
    # The slow table under a source entry of its own: its run holds none of src0-2's run slots.
    add_source(control, SLOW_SOURCE, sources[0])
    with psycopg.connect(sources[0], autocommit=True) as source:
        create_slow_view(source, ROWS)
    destination = add_row(control, SLOW_KEY, SLOW_SOURCE, "slow_view", "full")
    return [*tables, Table(SLOW_KEY, sources[0], "slow_base", destination)]


def _environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, control_url: str, dagster_url: str, lake: str
) -> Path:
    """The cluster's variables in this process (celery_hosts.py passes them on), and the test's own
    DAGSTER_HOME: the deployment's dagster.yaml with run monitoring polling every 5 s."""
    text = (ROOT / "deploy" / "celery" / "dagster.yaml").read_text()
    faster = text.replace("poll_interval_seconds: 30", "poll_interval_seconds: 5")
    faster = faster.replace("start_timeout_seconds: 180", "start_timeout_seconds: 60")
    assert faster.count("seconds: 5\n") == 1 and "seconds: 60\n" in faster
    home = tmp_path / "test_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(faster)
    settings = {
        "DATALOADER_CONTROL_DB_URL": control_url,
        "DAGSTER_PG_URL": sqlalchemy_url(dagster_url, "psycopg2"),
        "DATALOADER_LAKE_ROOT": lake,
        "DATALOADER_CELERY_INSTANCE_YAML": str(home / "dagster.yaml"),
        "DATALOADER_CELERY_BROKER_URL": "pyamqp://guest:guest@127.0.0.1:5672//",
        "DATALOADER_CELERY_BACKEND_URL": "redis://127.0.0.1:6379/0",
        "DATALOADER_DAGSTER_URL": "http://127.0.0.1:1",
        "DATALOADER_MASTER_INTERVAL_S": "3",
        "DATALOADER_MASTER_BATCH": "100",
        "DATALOADER_RUN_BATCH": "3",
        "DATALOADER_RUN_CONCURRENCY": "2",
        "DATALOADER_REFRESH_INTERVAL_S": "5",
        "DATALOADER_FAILED_INTERVAL_S": "3",
        "DATALOADER_RECONCILE_INTERVAL_S": "5",
        "DATALOADER_LONGRUNNING_INTERVAL_S": "3",
        "DATALOADER_LONGRUNNING_THRESHOLD_S": str(THRESHOLD_S),
        "DATALOADER_RETRY_BASE_S": "1",
        "DATALOADER_RETRY_CAP_S": "5",
        "DATALOADER_LANDING_INTERVAL_S": "86400",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    return home


def _delta_differs(table: Table) -> str | None:
    """How the table's Delta rows (id, v) differ from its source's; None when equal."""
    lake = os.environ["DATALOADER_LAKE_ROOT"]
    return delta_vs_source(lake, table.destination, table.source_url, table.source_table, table.control_key)


def _run_problems(instance: DagsterInstance) -> list[str]:
    """Load runs on fewer than two hosts, or more than two runs of one source at once."""
    # Load runs are the tables' asset runs the master sensor tags with their source.
    load_runs = [r for r in instance.get_run_records() if SOURCE_TAG in r.dagster_run.tags]
    succeeded = [r.dagster_run for r in load_runs if r.dagster_run.status == DagsterRunStatus.SUCCESS]
    hosts = {task_worker(instance, run)[0] for run in succeeded} - {None}
    problems = [] if len(hosts) > 1 else [f"successful load runs ran on {hosts}, not on several hosts"]
    now = time.time()
    for source in {r.dagster_run.tags.get(SOURCE_TAG) for r in load_runs}:
        spans = [
            (epoch(r.start_time), epoch(r.end_time) or now)
            for r in load_runs
            if r.dagster_run.tags.get(SOURCE_TAG) == source and r.start_time
        ]
        if (peak := max_concurrent(spans)) > 2:
            problems.append(f"source {source}: {peak} runs at once (limit 2)")
    return problems


def _fault_problems(watch: Watch, control: psycopg.Connection) -> list[str]:
    """The killed host: nothing of it left, its tables failed by a monitor, its runs not STARTED."""
    if watch.victim is None:
        return ["no host was killed"]
    problems = [f"SIGKILL of {watch.victim} left processes {watch.victim_left}"] if watch.victim_left else []
    if not watch.victim_tables:
        problems.append(f"no table was loading on the killed host {watch.victim}")
    allowed = RECOVERY_CODES
    for key in sorted(watch.victim_tables):
        codes = {
            code
            for (code,) in control.execute(
                # Failed by a monitor; or Failed by a monitor, then found committed by the retry and
                # corrected to Succeeded (the kill came between the Delta commit and its record).
                "SELECT error_code FROM dataloader.historical_metadata WHERE control_key = %s "
                "AND run_id = ANY(%s) AND (load_status = 'Failed' "
                "OR error_message LIKE 'committed to Delta, then the run ended before recording it%%')",
                (key, watch.victim_runs),
            ).fetchall()
        }
        if not codes & allowed:
            problems.append(
                f"{key} (killed host): its attempt ended {codes or 'not Failed'}, not by a monitor"
            )
    stuck = [r for r in watch.victim_runs if not watch.instance.get_run_by_id(r).is_finished]
    if stuck:
        problems.append(f"runs of the killed host never detected as dead (still unfinished): {stuck}")
    return problems


@pytest.mark.timeout(900)
def test_celery_cluster_loads_every_table_once_through_three_hosts_and_survives_a_killed_host(
    pg_admin_url: str,
    control_db_url: str,
    control_conn: psycopg.Connection,
    s3_lake_root: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _require_servers()
    sources = [create_database(pg_admin_url, f"dl_celery_src{s}") for s in range(SOURCES)]
    dagster_db = create_database(pg_admin_url, "dl_celery_dagster")
    root = tmp_path / "cluster"
    try:
        tables = _seed(control_conn, sources)
        home = _environment(monkeypatch, tmp_path, control_db_url, dagster_db, s3_lake_root)
        hosts_script("start", "--hosts", str(HOSTS), "--root", str(root))
        watch = Watch(instance_for(home), control_conn, root, sources[0])
        started = time.monotonic()
        while True:
            if watch.victim is None:
                watch.maybe_kill()
            watch.follow_slow()
            statuses = control_conn.execute("SELECT last_status FROM dataloader.table_control").fetchall()
            if watch.victim and watch.slow_failed and all(s == "Succeeded" for (s,) in statuses):
                break
            if time.monotonic() - started > DEADLINE_S:
                late = control_conn.execute(
                    "SELECT control_key, last_status, last_error_code, last_status_message "
                    "FROM dataloader.table_control WHERE last_status IS DISTINCT FROM 'Succeeded'"
                ).fetchall()
                pytest.fail(
                    f"after {DEADLINE_S}s: killed {watch.victim} (runs {watch.victim_runs}), slow run "
                    f"{watch.slow_run} failed by the monitor: {watch.slow_failed}; not Succeeded: {late}; "
                    f"unfinished runs (source, status, host, task state, pool pid): {in_flight(watch.instance)}; "
                    f"logs under {root}"
                )
            time.sleep(1)
        print(f"all {len(tables)} tables Succeeded after {time.monotonic() - started:.0f}s")
        problems = [p for t in tables if (p := _delta_differs(t))]
        problems += _run_problems(watch.instance)
        problems += [f"slow load not stopped: {p}" for p in watch.slow_still_running()]
        if not watch.slow_workers or not watch.slow_backends:
            problems.append(
                f"the slow load was never seen running ({watch.slow_workers}, {watch.slow_backends})"
            )
        problems += _fault_problems(watch, control_conn)
        assert not problems, "\n".join(problems)
    finally:
        if (root / "cluster.json").exists():
            hosts_script("stop", "--root", str(root))
        for url in [*sources, dagster_db]:
            drop_database(pg_admin_url, url)
