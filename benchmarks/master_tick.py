"""`python -m benchmarks.master_tick`: what one sensor tick's queries cost at 10,000 control rows.

Builds, in a fresh database per history depth, 10,000 control rows on 10 sources (most Succeeded and
not due, 5% due, some Queued / In Progress / Failed, ten due chunked_backfills, 1% without a staging
model) with DEPTH history rows each, then times every query a master, reconcile or landing tick
asks; last, with every Succeeded row made due, queuing 10 again and how many rows that tick holds
locked. Prints one table of median milliseconds (of BENCH_TICK_REPEAT runs, default 5).

Environment: BENCH_POSTGRES_URL (admin URL; default the server at 127.0.0.1:5432, else the embedded
one), BENCH_TICK_ROWS (10000), BENCH_TICK_DEPTHS (history rows per control row, default "10,100").
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.run import _admin_url
from control_db import queries
from control_db.migrate import upgrade

TARGET_MS = 200.0

SOURCES = """
INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope)
SELECT 'src' || s, 'postgresql',
       '{"host": "127.0.0.1", "port": 5432, "database": "src", "user": "postgres"}'::jsonb, 'literal'
FROM generate_series(0, 9) AS s
"""

# i % 100: 0-88 Succeeded and not due, 89-93 Succeeded and due, 94-96 Queued (half of them for four
# hours), 97-98 In Progress, 99 Failed; i % 1000 = 90: a due chunked_backfill (one per source).
CONTROL_ROWS = """
INSERT INTO dataloader.table_control
    (control_key, db_config_key, source_schema, source_table, destination_table, load_strategy, cron,
     primary_keys, incremental_column, chunk_column, chunk_size, next_load_date_time, last_status,
     status_changed_at, staging_model_processed)
SELECT 'src' || src || '.public.t' || i, 'src' || src, 'public', 't' || i, 'bronze/src' || src || '/t' || i,
       CASE WHEN backfill THEN 'chunked_backfill' ELSE 'full' END, '0 * * * *',
       CASE WHEN backfill THEN ARRAY['id'] END, CASE WHEN backfill THEN 'updated_at' END,
       CASE WHEN backfill THEN 'id' END, CASE WHEN backfill THEN 100000 END,
       CASE WHEN i %% 100 < 89 THEN now() + interval '30 min' ELSE now() - interval '5 min' END,
       CASE WHEN i %% 100 < 94 THEN 'Succeeded' WHEN i %% 100 < 97 THEN 'Queued'
            WHEN i %% 100 < 99 THEN 'In Progress' ELSE 'Failed' END,
       now() - CASE WHEN i %% 2 = 0 THEN interval '4 hours' ELSE interval '1 min' END,
       i %% 100 <> 7
FROM (SELECT i, (i / 1000) %% 10 AS src, i %% 1000 = 90 AS backfill FROM generate_series(1, %(rows)s) AS i) AS g
"""

# The last attempt of each row matches its status (open when Queued / In Progress); older ones succeeded.
HISTORY_ROWS = """
INSERT INTO dataloader.historical_metadata
    (control_key, config_id, run_id, load_strategy, load_queued_time, load_start_time, load_end_time,
     rows_processed, load_status)
SELECT tc.control_key, tc.config_id, 'run-' || tc.config_id || '-' || d, tc.load_strategy,
       t - interval '1 min', t, CASE WHEN final AND open THEN NULL ELSE t + interval '10 s' END, 100,
       CASE WHEN final THEN tc.last_status ELSE 'Succeeded' END
FROM generate_series(1, %(depth)s) AS d
CROSS JOIN dataloader.table_control AS tc
CROSS JOIN LATERAL (SELECT now() - (%(depth)s - d + 1) * interval '1 hour' AS t, d = %(depth)s AS final,
                           tc.last_status IN ('Queued', 'In Progress') AS open) AS x
ORDER BY d, tc.config_id
"""


def _database(admin_url: str) -> str:
    name = f"dl_tick_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def _drop(admin_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build(url: str, rows: int, depth: int) -> None:
    """Migrate `url` and fill it with `rows` control rows of `depth` history rows each."""
    upgrade(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SOURCES)
        conn.execute(CONTROL_ROWS, {"rows": rows})
        conn.execute(HISTORY_ROWS, {"depth": depth})
        conn.execute("VACUUM ANALYZE")


def _queue_and_roll_back(conn: psycopg.Connection) -> list:
    with conn.transaction(force_rollback=True):
        return queries.queue_ready_tables(conn, limit=10)


TICK_QUERIES: dict[str, Callable[[psycopg.Connection], list]] = {
    "active_control_keys": queries.active_control_keys,
    "queue_ready_tables(limit=10)": _queue_and_roll_back,
    "in_progress_rows": queries.in_progress_rows,
    "open_history_rows": queries.open_history_rows,
    "landing_pending": queries.landing_pending,
    "stuck_queued(1 h)": lambda conn: queries.stuck_queued(conn, timedelta(hours=1)),
    "stuck_running(3 h)": lambda conn: queries.stuck_running(conn, timedelta(hours=3)),
    "failed_retryable": queries.failed_retryable,
    "table_status (CLI, not a tick)": queries.table_status,
}


ALL_DUE = "queue_ready_tables(limit=10), every row due"


def _median_ms(query: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        query()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure_all_due(url: str, repeat: int) -> tuple[str, float]:
    """Make every Succeeded row due, then time queuing 10 and count the rows that tick holds locked."""
    with queries.connect(url, "bench") as conn, psycopg.connect(url, autocommit=True) as other:
        conn.execute(
            "UPDATE dataloader.table_control SET next_load_date_time = NULL WHERE last_status = 'Succeeded'"
        )
        conn.execute("ANALYZE dataloader.table_control")
        millis = _median_ms(lambda: _queue_and_roll_back(conn), repeat)
        count = (
            "SELECT count(*) FROM (SELECT 1 FROM dataloader.table_control FOR UPDATE SKIP LOCKED) AS lockable"
        )
        with conn.transaction(force_rollback=True):
            queued = queries.queue_ready_tables(conn, limit=10)
            (lockable,) = other.execute(count).fetchone() or (0,)
        (total,) = other.execute("SELECT count(*) FROM dataloader.table_control").fetchone() or (0,)
    return f"{len(queued)} (locks {total - lockable:,} of {total:,})", millis


def measure(url: str, repeat: int) -> dict[str, tuple[str, float]]:
    """name -> (rows returned, median milliseconds) for every tick query, after one warm-up run."""
    results = {}
    with queries.connect(url, "bench") as conn:
        for name, query in TICK_QUERIES.items():
            returned = len(query(conn))
            results[name] = (str(returned), _median_ms(lambda query=query: query(conn), repeat))
    return results


def main() -> int:
    rows = int(os.environ.get("BENCH_TICK_ROWS", "10000"))
    depths = [int(d) for d in os.environ.get("BENCH_TICK_DEPTHS", "10,100").split(",")]
    repeat = int(os.environ.get("BENCH_TICK_REPEAT", "5"))
    admin_url = _admin_url()
    by_depth = {}
    for depth in depths:
        url = _database(admin_url)
        try:
            start = time.perf_counter()
            build(url, rows, depth)
            print(
                f"built {rows:,} control rows x {depth} history rows in {time.perf_counter() - start:.1f} s"
            )
            by_depth[depth] = measure(url, repeat)
            by_depth[depth][ALL_DUE] = measure_all_due(url, repeat)
        finally:
            _drop(admin_url, url)
    header = ["query", "rows returned", *(f"ms @ {rows * d:,} history" for d in depths)]
    lines = [header]
    for name in [*TICK_QUERIES, ALL_DUE]:
        cells = [name, by_depth[depths[0]][name][0]]
        for depth in depths:
            millis = by_depth[depth][name][1]
            cells.append(f"{millis:.1f}" + (" (over target)" if millis > TARGET_MS else ""))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for n, line in enumerate(lines):
        print(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if n == 0:
            print("-|-".join("-" * width for width in widths))
    print(f"target: < {TARGET_MS:.0f} ms per query; medians of {repeat} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
