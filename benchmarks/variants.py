"""One benchmark variant per process: `python -m benchmarks.variants NAME CONTEXT_JSON`.

CONTEXT_JSON holds `source_url`, `table`, `lake`, and where a variant needs them `watermark`,
`control_url`, `dagster_url` (the Dagster storage database, psycopg2 form), `mariadb_url`. Imports happen inside the timed part. Prints one JSON line: seconds,
rows, peak RSS (of this process, or of the child process the variant times).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.source_table import COLUMNS_SQL

Context = dict[str, Any]
# Variants whose work is a child process: their peak RSS is the child's.
CHILD_PROCESS_VARIANTS = {
    "ceiling",
    "dataloader_load",
    "dataloader_load_incremental",
    "dagster_run",
    "mariadb_ceiling",
    "mariadb_dataloader_load",
}
ROOT = Path(__file__).resolve().parents[1]


def _source_config(url: str):
    from dataloader_contract.request import SourceConfig

    parts = urlsplit(url)
    return SourceConfig(
        db_config_key="bench",
        db_type="postgresql",
        kv_scope="literal",
        config={
            "host": parts.hostname,
            "port": parts.port or 5432,
            "database": parts.path.lstrip("/"),
            "user": parts.username or "postgres",
            "password": parts.password or "",
        },
    )


def _request(ctx: Context, strategy: str, watermark: str | None):
    """A load request for `public.<table>` into `bronze/bench/events`."""
    from dataloader_contract.request import LoadRequest

    table = ctx["table"]
    return LoadRequest(
        control_key=f"bench.public.{table}",
        load_strategy=strategy,
        source_schema="public",
        source_table=table,
        destination_table="bronze/bench/events",
        source=_source_config(ctx["source_url"]),
        lake_root=ctx["lake"],
        primary_keys=("id",),
        incremental_column="updated_at",
        incremental_value=watermark,
    )


def ceiling(ctx: Context) -> int:
    """Binary COPY of the same query by psql, discarded: what no reader of these rows can beat."""
    query = f"SELECT {COLUMNS_SQL} FROM {ctx['table']}"
    subprocess.run(
        ["psql", ctx["source_url"], "-q", "-c", f"\\copy ({query}) TO '/dev/null' WITH (FORMAT binary)"],
        check=True,
    )
    return int(ctx["rows"])  # known: a COUNT here would slow the ceiling down


def ours_full(ctx: Context) -> int:
    """`run_load` of a full load in this process (the worker's code without the control database)."""
    from pipes_workers.load import run_load

    shutil.rmtree(ctx["lake"], ignore_errors=True)
    return run_load(_request(ctx, "full", None), log=lambda _msg: None).rows_read


def _dataloader_load(ctx: Context, *, db_type: str, source_url: str, strategy: str = "full") -> int:
    """`dataloader load CONTROL_KEY` as a user runs it: its own process, against a real control row.
    A full load starts from an empty lake; an incremental one from the Delta table the lake holds,
    with the row's watermark at `ctx["watermark"]`."""
    from benchmarks.control_rows import prepare_control_row

    lake = Path(ctx["lake"])
    if strategy == "full":
        shutil.rmtree(lake, ignore_errors=True)
    key = prepare_control_row(
        ctx["control_url"],
        source_url=source_url,
        db_type=db_type,
        table=ctx["table"],
        lake_key=f"{db_type}_{ctx['table']}",
        load_strategy=strategy,
        watermark=ctx.get("watermark"),
    )
    env = {**os.environ, "DATALOADER_CONTROL_DB_URL": ctx["control_url"], "DATALOADER_LAKE_ROOT": str(lake)}
    command = Path(sys.executable).with_name("dataloader")
    _start_timer()
    done = subprocess.run([str(command), "load", key], env=env, capture_output=True, text=True)
    if done.returncode != 0 or "Succeeded" not in done.stdout:
        raise RuntimeError(f"dataloader load failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    rows = [line for line in done.stdout.splitlines() if ": Succeeded, " in line][0]
    return int(rows.split(": Succeeded, ", 1)[1].split(" rows", 1)[0].replace(",", ""))


def dataloader_load(ctx: Context) -> int:
    return _dataloader_load(ctx, db_type="postgresql", source_url=ctx["source_url"])


def dagster_run(ctx: Context) -> int:
    """`dagster asset materialize` of the table's asset: the run a person's Materialize launches,
    executed in its own process — Dagster and the code location imported, run and event storage in
    PostgreSQL as `dagster.yaml` sets them, the Pipes worker loading the table, the outcome, the
    materialisation and the four checks recorded — without the daemon's queue and launch."""
    import psycopg

    from benchmarks.control_rows import prepare_control_row

    lake = Path(ctx["lake"])
    shutil.rmtree(lake, ignore_errors=True)
    lake_key = f"postgresql_{ctx['table']}"
    key = prepare_control_row(
        ctx["control_url"],
        source_url=ctx["source_url"],
        db_type="postgresql",
        table=ctx["table"],
        lake_key=lake_key,
    )
    home = lake / "dagster_home"
    home.mkdir(parents=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": ctx["dagster_url"],
        "DATALOADER_CONTROL_DB_URL": ctx["control_url"],
        "DATALOADER_LAKE_ROOT": str(lake / "tables"),
    }
    # The code location builds from the control-table state in Dagster's storage (not timed: a
    # deployment writes it when rows change, not per run).
    subprocess.run([sys.executable, "-m", "dataloader_defs.state", "refresh"], env=env, cwd=ROOT, check=True)
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
    command += ["--select", f"bronze/bench/{lake_key}", "-m", "dataloader_defs.definitions"]
    _start_timer()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0 or "RUN_SUCCESS" not in done.stderr:
        raise RuntimeError(f"dagster asset materialize failed:\n{done.stderr[-3000:]}")
    with psycopg.connect(ctx["control_url"]) as conn:
        status, rows = conn.execute(
            "SELECT last_status, last_rows_processed FROM dataloader.table_control WHERE control_key = %s",
            (key,),
        ).fetchone()
    if status != "Succeeded":
        raise RuntimeError(f"{key}: {status} after the run")
    return int(rows)


def dataloader_load_incremental(ctx: Context) -> int:
    return _dataloader_load(ctx, db_type="postgresql", source_url=ctx["source_url"], strategy="incremental")


def mariadb_dataloader_load(ctx: Context) -> int:
    return _dataloader_load(ctx, db_type="mariadb", source_url=ctx["mariadb_url"])


def mariadb_ceiling(ctx: Context) -> int:
    """The MariaDB client's own fastest dump of the same query (`--quick --batch`), discarded."""
    from benchmarks.source_table import mariadb_params

    p = mariadb_params(ctx["mariadb_url"])
    args = ["mariadb", "--quick", "--batch", "--skip-column-names", "-h", p["host"], "-P", str(p["port"])]
    args += ["-u", p["user"], p["database"], "-e", f"SELECT {COLUMNS_SQL} FROM {ctx['table']}"]
    env = {**os.environ, "MYSQL_PWD": p["password"]} if p["password"] else None
    with open(os.devnull, "wb") as sink:
        subprocess.run(args, check=True, stdout=sink, env=env)
    return int(ctx["rows"])


def ours_incremental(ctx: Context) -> int:
    from pipes_workers.load import run_load

    return run_load(_request(ctx, "incremental", ctx.get("watermark")), log=lambda _msg: None).rows_read


def pandas_read_sql(ctx: Context) -> int:
    import pandas as pd
    import sqlalchemy
    from deltalake import write_deltalake

    engine = sqlalchemy.create_engine(ctx["source_url"].replace("postgresql://", "postgresql+psycopg://", 1))
    frame = pd.read_sql(f"SELECT {COLUMNS_SQL} FROM {ctx['table']}", engine)
    write_deltalake(str(Path(ctx["lake"]) / "pandas"), frame, mode="overwrite")
    return len(frame)


def _dlt(ctx: Context, backend: str) -> int:
    import dlt
    from dlt.sources.sql_database import sql_table

    lake = Path(ctx["lake"])
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{backend}",
        destination=dlt.destinations.filesystem(bucket_url=(lake / f"dlt_{backend}").as_uri()),
        dataset_name="bench",
        pipelines_dir=str(lake / f"dlt_pipelines_{backend}"),
    )
    source = sql_table(
        credentials=ctx["source_url"].replace("postgresql://", "postgresql+psycopg2://", 1),
        table=ctx["table"],
        backend=backend,
        reflection_level="full_with_precision",
    )
    info = pipeline.run(source, table_format="delta", write_disposition="replace")
    info.raise_on_failed_jobs()
    return int(pipeline.last_trace.last_normalize_info.row_counts.get(ctx["table"], 0))


def dlt_connectorx(ctx: Context) -> int:
    return _dlt(ctx, "connectorx")


def dlt_pyarrow(ctx: Context) -> int:
    return _dlt(ctx, "pyarrow")


VARIANTS: dict[str, Callable[[Context], int]] = {
    "ceiling": ceiling,
    "dataloader_load": dataloader_load,
    "dagster_run": dagster_run,
    "ours_full": ours_full,
    "ours_incremental": ours_incremental,
    "dataloader_load_incremental": dataloader_load_incremental,
    "pandas_read_sql": pandas_read_sql,
    "dlt_connectorx": dlt_connectorx,
    "dlt_pyarrow": dlt_pyarrow,
    "mariadb_ceiling": mariadb_ceiling,
    "mariadb_dataloader_load": mariadb_dataloader_load,
}

_started = [0.0]


def _start_timer() -> None:
    """Restart the clock: a variant's untimed set-up (a control row) ends here."""
    _started[0] = time.perf_counter()


def main(argv: list[str]) -> int:
    name, ctx = argv[0], json.loads(argv[1])
    Path(ctx["lake"]).mkdir(parents=True, exist_ok=True)
    _start_timer()
    rows = VARIANTS[name](ctx)
    seconds = time.perf_counter() - _started[0]
    who = resource.RUSAGE_CHILDREN if name in CHILD_PROCESS_VARIANTS else resource.RUSAGE_SELF
    peak_kb = resource.getrusage(who).ru_maxrss
    print(json.dumps({"variant": name, "seconds": seconds, "rows": rows, "peak_rss_mb": peak_kb / 1024}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
