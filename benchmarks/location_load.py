"""`python -m benchmarks.location_load`: how long the code location takes to load at N control rows.

For each N (BENCH_LOCATION_ROWS, default "10000,50000"): a fresh control database with N active rows
on 10 sources, their state written to a fresh Dagster instance (PostgreSQL storage, this repo's
dagster.yaml), then, each in a fresh process (imports included, medians of BENCH_LOCATION_REPEAT,
default 3):
- `definitions`: Dagster loads `dataloader_defs.definitions` as a code server initialises it (the
  latest state version, every asset, check and sensor built);
- `code location`: the same plus the repository snapshot a code server serves to the webserver and
  the daemon (Dagster's `InProcessCodeLocation`);
- the state refresh (read the rows, store a version) in this process.
Prints one table. Targets (issue 18): definitions at 10,000 rows <= 5 s, at 50,000 <= 30 s.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from benchmarks.throughput import ROOT, Databases, admin_url, load_average
from control_db.migrate import upgrade
from control_db.urls import sqlalchemy_url

ROWS_SQL = (
    "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, source_table, "
    "destination_table, load_strategy, cron, primary_keys) "
    "SELECT 'src' || (g %% 10) || '.public.t' || g, 'src' || (g %% 10), 'public', 't' || g, "
    "'bronze/src' || (g %% 10) || '/t' || g, 'full', '0 * * * *', ARRAY['id'] "
    "FROM generate_series(1, %s) g"
)
SOURCES_SQL = (
    "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
    "SELECT 'src' || s, 'postgresql', '{\"host\": \"127.0.0.1\", \"database\": \"x\"}'::jsonb, 'literal' "
    "FROM generate_series(0, 9) s"
)
# Run in a fresh interpreter: prints the seconds from before `import dagster` to the loaded location.
PROGRAM = {
    "definitions": (
        "import time; t0 = time.monotonic()\n"
        "from dagster import DagsterInstance\n"
        "from dataloader_defs.definitions import load_definitions\n"
        "with DagsterInstance.get() as instance:\n"
        "    defs = load_definitions(instance)\n"
        "    n = len(defs.get_repository_def().asset_graph.get_all_asset_keys())\n"
        "print(n, time.monotonic() - t0)\n"
    ),
    "code location": (
        "import time; t0 = time.monotonic()\n"
        "from dagster import DagsterInstance\n"
        "from dagster._core.remote_origin import InProcessCodeLocationOrigin\n"
        "from dagster._core.types.loadable_target_origin import LoadableTargetOrigin\n"
        "origin = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name='dataloader_defs.definitions'),"
        " location_name='dataloader_defs')\n"
        "with DagsterInstance.get() as instance, origin.create_location(instance) as location:\n"
        "    repo = next(iter(location.get_repositories().values()))\n"
        "    n = len(repo.get_asset_node_snaps())\n"
        "print(n, time.monotonic() - t0)\n"
    ),
}


def _timed(program: str, env: dict[str, str]) -> tuple[int, float]:
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    assets, seconds = done.stdout.strip().splitlines()[-1].split()
    return int(assets), float(seconds)


def measure(rows: int, repeat: int) -> list[tuple[str, int, float, float, float]]:
    """(what, assets, median s, min s, max s) for one row count."""
    from dagster import DagsterInstance

    from dataloader_defs import state

    dbs = Databases(admin_url())
    work = Path(tempfile.mkdtemp(prefix="dataloader-location-"))
    try:
        control_url = dbs.create("dl_bench_location")
        upgrade(control_url)
        with psycopg.connect(control_url, autocommit=True) as conn:
            conn.execute(SOURCES_SQL)
            conn.execute(ROWS_SQL, (rows,))
        home = work / "dagster_home"
        home.mkdir()
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": sqlalchemy_url(dbs.create("dl_bench_location_dagster"), "psycopg2"),
            "DATALOADER_CONTROL_DB_URL": control_url,
            "DATALOADER_LAKE_ROOT": str(work / "lake"),
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            with DagsterInstance.get() as instance:
                t0 = time.monotonic()
                state.refresh_state(instance, control_url)
                refresh_s = time.monotonic() - t0
        finally:
            os.environ.clear()
            os.environ.update(saved)
        results = [("state refresh (read rows, store a version)", rows, refresh_s, refresh_s, refresh_s)]
        for what, program in PROGRAM.items():
            timings = [_timed(program, env) for _ in range(repeat)]
            seconds = [s for _, s in timings]
            results.append((what, timings[0][0], statistics.median(seconds), min(seconds), max(seconds)))
        return results
    finally:
        dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    counts = [int(n) for n in (os.environ.get("BENCH_LOCATION_ROWS") or "10000,50000").split(",")]
    repeat = int(os.environ.get("BENCH_LOCATION_REPEAT") or 3)
    print(f"load average before: {load_average()}")
    print("| control rows | what (fresh process, imports included) | assets | s (median) | min–max s |")
    print("|---:|---|---:|---:|---|")
    for rows in counts:
        for what, assets, median, low, high in measure(rows, repeat):
            print(f"| {rows:,} | {what} | {assets:,} | {median:.2f} | {low:.2f}–{high:.2f} |")
    print(f"load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
