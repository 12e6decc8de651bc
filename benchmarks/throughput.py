"""Small-table loads per hour through the whole system, and the code location's cost at 10,000 rows.

    python -m benchmarks.throughput                   # all parts (make bench-throughput)
    BENCH_THROUGHPUT_PARTS=system|celery|scale ...    # some of them (comma list)

System: 3 PostgreSQL source databases with BENCH_TABLES_PER_SOURCE (20) tables of BENCH_TABLE_ROWS
(2,000) rows each, one control row per table (half full, half incremental), all due at once. A real
`dagster-daemon` (QueuedRunCoordinator, PostgreSQL storage, the repo's dagster.yaml: two runs per
source at a time) runs the master sensor, launches the runs, each run loads its tables through Pipes
workers into Delta and records them in the control table. Timed from the daemon's start until every
row is Succeeded, for "one run per table" (DATALOADER_RUN_BATCH=1, one table at a time) and for
batched runs (DATALOADER_RUN_BATCH=12, DATALOADER_RUN_CONCURRENCY=4), in one invocation.

Celery: the batched variant through the Celery deployment (benchmarks/celery_throughput.py) with
BENCH_CELERY_HOSTS (1,2,3) worker hosts, lake on the S3 emulator; printed beside the single-host
batched variant with the CPU seconds of all the processes each used (benchmarks/cluster_cpu.py).

Scale: 10,000 control rows (100 history rows each with BENCH_HISTORY_PER_ROW): the code location's
load (definitions built from the control table, asset graph resolved), the snapshot refresh, and one
master-sensor tick queuing DATALOADER_MASTER_BATCH rows while all 10,000 are due.

Printed as tables with the load average before and after; nothing is asserted.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.cluster_cpu import BackendSampler, session_cpu
from control_db.migrate import upgrade
from control_db.urls import sqlalchemy_url
from scripts.process_sessions import stop_sessions

ROOT = Path(__file__).resolve().parents[1]
SOURCES = 3


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _with_db(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def admin_url() -> str:
    """The PostgreSQL server the benchmark uses (BENCH_POSTGRES_URL, else 127.0.0.1:5432)."""
    return os.environ.get("BENCH_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"


class Databases:
    """Fresh databases on the server, dropped at the end."""

    def __init__(self, admin: str) -> None:
        self.admin = admin
        self.names: list[str] = []

    def create(self, prefix: str) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return _with_db(self.admin, name)

    def drop_all(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def seed_sources(dbs: Databases, control_url: str, tables: int, rows: int) -> int:
    """Three source databases of `tables` tables each, and their control rows; returns the row count."""
    total = 0
    with psycopg.connect(control_url, autocommit=True) as control:
        for s in range(SOURCES):
            url = dbs.create(f"dl_bench_src{s}")
            parts = urlsplit(url)
            config = {"host": parts.hostname, "port": parts.port or 5432, "database": parts.path.lstrip("/"),
                      "user": parts.username or "postgres"}  # fmt: skip
            control.execute(
                "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
                "VALUES (%s, 'postgresql', %s::jsonb, 'literal')",
                (f"src{s}", json.dumps(config)),
            )
            with psycopg.connect(url, autocommit=True) as source:
                for t in range(tables):
                    source.execute(
                        f"CREATE TABLE t{t:02} (id integer PRIMARY KEY, v text, "
                        "updated_at timestamptz NOT NULL DEFAULT now())"
                    )
                    source.execute(
                        f"INSERT INTO t{t:02} (id, v) SELECT g, md5(g::text) FROM generate_series(1, %s) g",
                        (rows,),
                    )
                    incremental = t % 2 == 1
                    control.execute(
                        "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, "
                        "source_table, destination_table, load_strategy, cron, primary_keys, incremental_column) "
                        "VALUES (%s, %s, 'public', %s, %s, %s, '0 * * * *', ARRAY['id'], %s)",
                        (
                            f"src{s}.public.t{t:02}",
                            f"src{s}",
                            f"t{t:02}",
                            f"bronze/src{s}/t{t:02}",
                            "incremental" if incremental else "full",
                            "updated_at" if incremental else None,
                        ),
                    )
                    total += 1
    return total


def run_system(label: str, batch: int, concurrency: int, tables: int, rows: int) -> dict[str, object]:
    """One end-to-end run with a fresh control database, Dagster instance and lake; its figures."""
    dbs = Databases(admin_url())
    work = Path(tempfile.mkdtemp(prefix="dataloader-throughput-"))
    daemon = backends = None
    try:
        control_url = dbs.create("dl_bench_control")
        upgrade(control_url)
        total = seed_sources(dbs, control_url, tables, rows)
        dagster_url = dbs.create("dl_bench_dagster")
        home = work / "dagster_home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": sqlalchemy_url(dagster_url, "psycopg2"),
            "DATALOADER_CONTROL_DB_URL": control_url,
            "DATALOADER_LAKE_ROOT": str(work / "lake"),
            "DATALOADER_MASTER_INTERVAL_S": "5",
            "DATALOADER_MASTER_BATCH": str(total),
            "DATALOADER_RUN_BATCH": str(batch),
            "DATALOADER_RUN_CONCURRENCY": str(concurrency),
            "DATALOADER_DAGSTER_URL": "http://127.0.0.1:1",  # no webserver: no reload needed here
        }
        # The code location builds from the control-table state in Dagster's storage: write it first.
        subprocess.run([sys.executable, "-m", "dataloader_defs.state", "refresh"], env=env, check=True)
        started = time.monotonic()
        backends = BackendSampler(dbs.names).__enter__()
        daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = started + _env_int("BENCH_THROUGHPUT_TIMEOUT_S", 1800)
        done = failed = 0
        with psycopg.connect(control_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                done, failed = conn.execute(
                    "SELECT count(*) FILTER (WHERE last_status = 'Succeeded'), "
                    "count(*) FILTER (WHERE last_status = 'Failed') FROM dataloader.table_control"
                ).fetchone()
                if done + failed >= total:
                    break
                time.sleep(1)
            elapsed = time.monotonic() - started
            cluster_cpu, postgres_cpu = session_cpu([daemon.pid]), backends.stop()
            first_start, last_end = conn.execute(
                "SELECT min(load_start_time), max(load_end_time) FROM dataloader.historical_metadata"
            ).fetchone()
            failures = conn.execute(
                "SELECT control_key, last_error_code, last_status_message FROM dataloader.table_control "
                "WHERE last_status = 'Failed' ORDER BY control_key"
            ).fetchall()
            load_seconds = [
                r[0]
                for r in conn.execute(
                    "SELECT extract(epoch FROM load_end_time - load_start_time) FROM dataloader.historical_metadata "
                    "WHERE load_status = 'Succeeded'"
                ).fetchall()
            ]
        loading = (last_end - first_start).total_seconds() if first_start and last_end else float("nan")
        return {
            "variant": label,
            "tables": total,
            "succeeded": done,
            "failed": failed,
            "seconds": round(elapsed, 1),
            "tables_per_hour": round(done / elapsed * 3600) if elapsed else 0,
            "first_to_last_s": round(loading, 1),
            "cpu_s": round(cluster_cpu + postgres_cpu, 1),
            "cpu_per_table_s": round((cluster_cpu + postgres_cpu) / done, 2) if done else None,
            "cpu_detail": f"daemon, code server and runs {cluster_cpu:.1f} s, PostgreSQL {postgres_cpu:.1f} s",
            "failures": failures,
            "median_table_s": round(statistics.median(float(s) for s in load_seconds), 2)
            if load_seconds
            else None,
        }
    finally:
        if backends is not None:
            backends.stop()
        if daemon is not None:
            # The whole session: the code servers the daemon started outlive a SIGTERM to its group.
            left = stop_sessions([daemon.pid])
            daemon.wait()
            if left:
                print(f"processes of the daemon's session survived SIGKILL: {left}", file=sys.stderr)
        dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)


def run_scale(rows: int, history_per_row: int) -> list[tuple[str, float]]:
    """Seconds for the code location load, the snapshot refresh and one master tick at `rows` rows."""
    from benchmarks.location_load import ROWS_SQL, SOURCES_SQL  # it imports this module

    dbs = Databases(admin_url())
    work = Path(tempfile.mkdtemp(prefix="dataloader-scale-"))
    try:
        control_url = dbs.create("dl_bench_scale")
        upgrade(control_url)
        with psycopg.connect(control_url, autocommit=True) as conn:
            conn.execute(SOURCES_SQL)
            conn.execute(ROWS_SQL, (rows,))
            conn.execute(
                "INSERT INTO dataloader.historical_metadata (control_key, load_status, load_queued_time, "
                "load_start_time, load_end_time, rows_processed) "
                "SELECT tc.control_key, 'Succeeded', now() - make_interval(hours => h), "
                "now() - make_interval(hours => h), now() - make_interval(hours => h), 2000 "
                "FROM dataloader.table_control tc, generate_series(1, %s) h",
                (history_per_row,),
            )
            conn.execute("ANALYZE")
        from dagster import DagsterInstance, build_sensor_context

        from benchmarks.location_load import PROGRAM, _timed
        from dataloader_defs import state
        from dataloader_defs.control_snapshot import read_snapshot
        from dataloader_defs.defs.assets import build_load_assets
        from dataloader_defs.defs.resources import ControlDatabase
        from dataloader_defs.defs.sensors.master_sensor import build_master_sensor

        home = work / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(
            "defs_state_storage:\n  module: dataloader_defs.state_storage\n  class: InstanceDefsStateStorage\n"
        )
        env = {**os.environ, "DAGSTER_HOME": str(home), "DATALOADER_LAKE_ROOT": str(work)}
        env["DATALOADER_CONTROL_DB_URL"] = control_url
        with DagsterInstance.from_config(str(home)) as instance:
            t0 = time.monotonic()
            state.refresh_state(instance, control_url)
            refresh_s = time.monotonic() - t0
        load = _timed(PROGRAM["definitions"], env)[1]
        with psycopg.connect(control_url, autocommit=True) as conn:
            snapshot = read_snapshot(conn)
        sensor = build_master_sensor(build_load_assets(snapshot.rows), snapshot)
        with DagsterInstance.ephemeral() as instance:
            context = build_sensor_context(
                instance=instance, resources={"control_db": ControlDatabase(url=control_url)}
            )
            t0 = time.monotonic()
            result = sensor(context)
            tick_s = time.monotonic() - t0
        queued = sum(len(r.asset_selection or []) for r in result.run_requests)
        return [
            (f"code location load ({rows:,} assets, imports included)", load),
            ("state refresh (read rows, store a version)", refresh_s),
            (f"master-sensor tick (queues {queued} of {rows:,} due rows)", tick_s),
        ]
    finally:
        dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)


def print_celery(tables: int, rows: int) -> None:
    """The batched variant on one host beside the Celery deployment with 1..N worker hosts."""
    from benchmarks.celery_throughput import run_celery

    hosts = [int(h) for h in (os.environ.get("BENCH_CELERY_HOSTS") or "1,2,3").split(",")]
    results = [
        run_system("one host, batched runs (no Celery)", batch=12, concurrency=4, tables=tables, rows=rows)
    ]
    results += [run_celery(n, tables, rows) for n in hosts]
    print(
        f"\n{SOURCES * tables} tables x {rows:,} rows, batched runs (12 tables, 4 at a time), all due at once"
    )
    print("| variant | succeeded | failed | wall s | tables/hour | CPU s | CPU s per table |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['variant']} | {r['succeeded']} | {r['failed']} | {r['seconds']} | {r['tables_per_hour']:,} | "
            f"{r['cpu_s']} | {r['cpu_per_table_s']} |"
        )
    for r in results:
        print(f"CPU of '{r['variant']}': {r['cpu_detail']}")
        for key, code, message in r.get("failures", []):
            print(f"failed in '{r['variant']}': {key} ({code}): {message}")


def main() -> int:
    parts = (os.environ.get("BENCH_THROUGHPUT_PARTS") or "system,celery,scale").split(",")
    tables, rows = _env_int("BENCH_TABLES_PER_SOURCE", 20), _env_int("BENCH_TABLE_ROWS", 2000)
    print(f"load average before: {load_average()}")
    if "system" in parts:
        results = [
            run_system("one run per table", batch=1, concurrency=1, tables=tables, rows=rows),
            run_system(
                "batched runs (12 tables, 4 at a time)", batch=12, concurrency=4, tables=tables, rows=rows
            ),
        ]
        print(f"\n{SOURCES * tables} tables x {rows:,} rows on {SOURCES} sources, all due at once")
        print("| variant | tables | succeeded | failed | wall s | tables/hour | median load s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in results:
            print(
                f"| {r['variant']} | {r['tables']} | {r['succeeded']} | {r['failed']} | {r['seconds']} | "
                f"{r['tables_per_hour']:,} | {r['median_table_s']} |"
            )
        for r in results:
            for key, code, message in r["failures"]:
                print(f"failed in '{r['variant']}': {key} ({code}): {message}")
    if "celery" in parts:
        print_celery(tables, rows)
    if "scale" in parts:
        rows_10k = _env_int("BENCH_SCALE_ROWS", 10_000)
        figures = run_scale(rows_10k, _env_int("BENCH_HISTORY_PER_ROW", 100))
        print(f"\n{rows_10k:,} control rows")
        print("| measure | s |")
        print("|---|---:|")
        for name, seconds in figures:
            print(f"| {name} | {seconds:.2f} |")
    print(f"\nload average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
