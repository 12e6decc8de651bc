"""`make bench-cdc`: `cdc` against `incremental` (delete_mode hard) on the benchmark table with 1% of
its rows changed — 0.6% updated, 0.2% inserted, 0.2% deleted — each load through `run_load` in a
process of its own, as `dataloader load` runs it.

Both strategies first load the whole table (untimed: incremental a full read, cdc its snapshot), then
the same changes are made and each strategy's next load is timed: wall seconds, the worker's peak
RSS, the CPU seconds the source server spent (its postmaster's children, live and reaped), and the
rows the source read from the table (pg_stat_user_tables: sequential + index fetches). incremental
needs its delete reconciliation (every source key read) to see the deletes; cdc reads them from the
WAL. Needs the wal_level=logical server (`make cdc-pg-start`).

Environment: BENCH_CDC_ROWS (default 10,000,000), BENCH_SEED (42), BENCH_CDC_POSTGRES_URL (admin URL,
default postgresql://postgres@127.0.0.1:5441/postgres). The table is dropped afterwards (the
inserts and deletes change it).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.source_table import ensure_table
from dataloader_contract.request import LoadRequest, SourceConfig

DATABASE = "dataloader_bench_cdc"
TICKS = os.sysconf("SC_CLK_TCK")


def _database(admin: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return urlunsplit(urlsplit(admin)._replace(path=f"/{DATABASE}"))


def _request(url: str, table: str, strategy: str, lake: str, watermark: str | None) -> dict:
    parts = urlsplit(url)
    source = SourceConfig(
        db_config_key="bench_cdc", db_type="postgresql", kv_scope="literal",
        config={"host": parts.hostname, "port": parts.port, "database": DATABASE, "user": parts.username or "postgres"},
    )  # fmt: skip
    request = LoadRequest(
        control_key=f"bench.cdc.{strategy}", load_strategy=strategy, source_schema="public", source_table=table,  # type: ignore[arg-type]
        destination_table=f"bronze/bench/{strategy}", source=source, lake_root=lake, primary_keys=("id",),
        incremental_column="updated_at" if strategy == "incremental" else None, incremental_value=watermark,
        delete_mode="hard", run_id=f"bench-{strategy}",
    )  # fmt: skip
    return request.to_dict()


def _server_cpu(url: str) -> float:
    """CPU seconds of the server's postmaster children so far (live ones, and reaped ones)."""
    with psycopg.connect(url) as conn:
        (data_dir,) = conn.execute("SHOW data_directory").fetchone()  # type: ignore[misc]
    postmaster = Path(data_dir, "postmaster.pid").read_text().split()[0]
    total = 0.0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if proc.name == postmaster:
            total += (int(fields[13]) + int(fields[14])) / TICKS  # cutime + cstime: reaped children
        elif fields[1] == postmaster:
            total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def _rows_read(url: str, table: str) -> int:
    time.sleep(1.5)  # backends flush their statistics about once a second
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables "
            "WHERE relname = %s",
            (table,),
        ).fetchone()
    return int(row[0]) if row else 0


def _load(url: str, table: str, request: dict) -> dict:
    """One load in its own process: its seconds, rows and peak RSS; the server's CPU and rows read."""
    cpu, scanned = _server_cpu(url), _rows_read(url, table)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.cdc_bench", "load", json.dumps(request)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{request['load_strategy']} load failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    measured["source_cpu_s"] = round(_server_cpu(url) - cpu, 2)
    measured["source_rows_read"] = _rows_read(url, table) - scanned
    return measured


def _change(url: str, table: str, rows: int) -> str:
    """0.6% of rows updated, 0.2% inserted, 0.2% deleted; the incremental watermark before them."""
    with psycopg.connect(url, autocommit=True) as conn:
        (watermark,) = conn.execute(f"SELECT max(updated_at) FROM {table}").fetchone()  # type: ignore[misc]
        step = 1000 // 6  # every 166th row: 0.6%
        conn.execute(
            f"UPDATE {table} SET updated_at = now(), amount = amount + 1, status = 'changed' WHERE id % {step} = 0"
        )
        conn.execute(
            f"INSERT INTO {table} SELECT id + {rows}, now(), customer_id, amount, status, payload, is_active, "
            f"event_date FROM {table} WHERE id <= {rows // 500}"
        )
        conn.execute(f"DELETE FROM {table} WHERE id % 500 = 7")
    return watermark.isoformat()


def main() -> int:
    """Run the comparison and print a Markdown table."""
    rows = int(os.environ.get("BENCH_CDC_ROWS", "10000000"))
    seed = int(os.environ.get("BENCH_SEED", "42"))
    admin = os.environ.get("BENCH_CDC_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5441/postgres")
    url = _database(admin)
    print(f"building the {rows:,}-row table on {urlsplit(admin).netloc} …", flush=True)
    table = ensure_table(url, rows, seed)
    results = {}
    try:
        with tempfile.TemporaryDirectory(prefix="dataloader-bench-cdc-") as lake:
            first = {
                s: _load(url, table, _request(url, table, s, lake, None)) for s in ("incremental", "cdc")
            }
            watermark = _change(url, table, rows)
            results["incremental"] = _load(url, table, _request(url, table, "incremental", lake, watermark))
            position = first["cdc"]["watermark_after"]
            results["cdc"] = _load(url, table, _request(url, table, "cdc", lake, position))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                (DATABASE,),
            )
    print(
        f"\n1% of {rows:,} rows changed (0.6% updated, 0.2% inserted, 0.2% deleted), load average {os.getloadavg()[0]:.1f}\n"
    )
    print("| strategy | wall s | rows read | rows deleted | source CPU s | source rows read | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['rows_read']:,} | {r['rows_deleted']:,} | {r['source_cpu_s']:.1f} "
            f"| {r['source_rows_read']:,} | {r['peak_rss_mb']:.0f} |"
        )
    return 0


def _load_here(request_json: str) -> int:
    from pipes_workers.load import run_load

    started = time.monotonic()
    result = run_load(LoadRequest.from_dict(json.loads(request_json)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "seconds": time.monotonic() - started, "rows_read": result.rows_read, "rows_deleted": result.rows_deleted or 0,
        "watermark_after": result.watermark_after, "peak_rss_mb": peak,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(_load_here(sys.argv[2]) if sys.argv[1:2] == ["load"] else main())
