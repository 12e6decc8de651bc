"""One benchmark variant per process: `python -m benchmarks.variants NAME SOURCE_URL LAKE_DIR [WATERMARK]`.

Prints one JSON line: seconds, rows, peak RSS (of this process alone).
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchmarks.source_table import COLUMNS_SQL, TABLE


def _source_config(url: str):
    from pipes_workers.request import SourceConfig

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


def _request(
    url: str, lake: Path, strategy: str, watermark: str | None, *, table: str = TABLE, **fields: Any
):
    """A load request for `public.<table>` into `bronze/bench/<table without bench_>`."""
    from pipes_workers.request import LoadRequest

    return LoadRequest(
        control_key=f"bench.public.{table}",
        load_strategy=strategy,
        source_schema="public",
        source_table=table,
        destination_table=f"bronze/bench/{table.removeprefix('bench_')}",
        source=_source_config(url),
        lake_root=str(lake),
        primary_keys=("id",),
        incremental_column="updated_at",
        incremental_value=watermark,
        **fields,
    )


def ceiling(url: str, lake: Path, watermark: str | None) -> int:
    """Binary COPY of the same query, discarded: what no reader of these rows can beat."""
    query = f"SELECT {COLUMNS_SQL} FROM {TABLE}"
    if shutil.which("psql"):
        subprocess.run(
            ["psql", url, "-q", "-c", f"\\copy ({query}) TO '/dev/null' WITH (FORMAT binary)"], check=True
        )
    else:
        import psycopg

        with (
            psycopg.connect(url) as conn,
            conn.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy,
        ):
            for _ in copy:
                pass
    return _count(url)


def ours_full(url: str, lake: Path, watermark: str | None) -> int:
    from pipes_workers.load import run_load

    shutil.rmtree(lake, ignore_errors=True)
    return run_load(_request(url, lake, "full", None), log=lambda _msg: None).rows_processed


def ours_incremental(url: str, lake: Path, watermark: str | None) -> int:
    from pipes_workers.load import run_load

    return run_load(_request(url, lake, "incremental", watermark), log=lambda _msg: None).rows_processed


def pandas_read_sql(url: str, lake: Path, watermark: str | None) -> int:
    import pandas as pd
    import sqlalchemy
    from deltalake import write_deltalake

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    frame = pd.read_sql(f"SELECT {COLUMNS_SQL} FROM {TABLE}", engine)
    write_deltalake(str(lake / "pandas"), frame, mode="overwrite")
    return len(frame)


def _dlt(url: str, lake: Path, backend: str) -> int:
    import dlt
    from dlt.sources.sql_database import sql_table

    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{backend}",
        destination=dlt.destinations.filesystem(bucket_url=(lake / f"dlt_{backend}").as_uri()),
        dataset_name="bench",
        pipelines_dir=str(lake / f"dlt_pipelines_{backend}"),
    )
    source = sql_table(
        credentials=url.replace("postgresql://", "postgresql+psycopg2://", 1),
        table=TABLE,
        backend=backend,
        reflection_level="full_with_precision",
    )
    info = pipeline.run(source, table_format="delta", write_disposition="replace")
    info.raise_on_failed_jobs()
    return int(pipeline.last_trace.last_normalize_info.row_counts.get(TABLE, 0))


def dlt_connectorx(url: str, lake: Path, watermark: str | None) -> int:
    return _dlt(url, lake, "connectorx")


def dlt_pyarrow(url: str, lake: Path, watermark: str | None) -> int:
    return _dlt(url, lake, "pyarrow")


def _count(url: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


VARIANTS: dict[str, Callable[[str, Path, str | None], int]] = {
    "ceiling": ceiling,
    "ours_full": ours_full,
    "ours_incremental": ours_incremental,
    "pandas_read_sql": pandas_read_sql,
    "dlt_connectorx": dlt_connectorx,
    "dlt_pyarrow": dlt_pyarrow,
}


def main(argv: list[str]) -> int:
    name, url, lake = argv[0], argv[1], Path(argv[2])
    watermark = argv[3] if len(argv) > 3 else None
    lake.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = VARIANTS[name](url, lake, watermark)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if name == "ceiling":
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"variant": name, "seconds": seconds, "rows": rows, "peak_rss_mb": peak_kb / 1024}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
