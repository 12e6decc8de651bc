"""`make bench-cdc`: `cdc` against `incremental` (delete_mode hard) on the benchmark table with 1% of
its rows changed — 0.6% updated, 0.2% inserted, 0.2% deleted — each load a `dataloader load
CONTROL_KEY` of its own control row, in its own process, as a user runs it.

Both rows first load the whole table (untimed: incremental a full read, cdc its snapshot), then the
same changes are made and each row's next load is timed: wall seconds, the process's peak RSS, the
CPU seconds the source server spent (its postmaster's children, live and reaped), and the rows the
source read from the table (pg_stat_user_tables: sequential + index fetches). incremental needs its
delete reconciliation (every source key read) to see the deletes; cdc reads them from the WAL. Needs
the wal_level=logical server (`make cdc-pg-start`).

Environment: BENCH_CDC_ROWS (default 10,000,000), BENCH_SEED (42), BENCH_CDC_POSTGRES_URL (admin URL
of the source server, default postgresql://postgres@127.0.0.1:5441/postgres), BENCH_CONTROL_POSTGRES_URL
(admin URL of the server that holds the control database, default postgresql://postgres@127.0.0.1:5432/postgres:
another server, so the control row's traffic is not counted as the source's CPU). The table is dropped
afterwards (the inserts and deletes change it).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from benchmarks.control_rows import prepare_control_row
from benchmarks.source_table import ensure_database, ensure_table
from benchmarks.user_load import timed_dataloader_load

DATABASE = "dataloader_bench_cdc"
CONTROL_DATABASE = "dataloader_bench_cdc_control"
TICKS = os.sysconf("SC_CLK_TCK")


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


def _load(url: str, table: str, control_url: str, key: str, lake: str) -> dict:
    """`dataloader load KEY` in its own process: its seconds and peak RSS, the rows and deletes its
    history row records, the source server's CPU and rows read meanwhile."""
    cpu, scanned = _server_cpu(url), _rows_read(url, table)
    measured = timed_dataloader_load(control_url, key, lake)
    with psycopg.connect(control_url) as conn:
        rows_read, rows_deleted = conn.execute(
            "SELECT rows_processed, coalesce(rows_deleted, 0) FROM dataloader.historical_metadata "
            "WHERE control_key = %s ORDER BY load_end_time DESC NULLS LAST LIMIT 1",
            (key,),
        ).fetchone()  # type: ignore[misc]
    return {
        **measured,
        "rows_read": rows_read,
        "rows_deleted": rows_deleted,
        "source_cpu_s": round(_server_cpu(url) - cpu, 2),
        "source_rows_read": _rows_read(url, table) - scanned,
    }


def _change(url: str, table: str, rows: int) -> None:
    """0.6% of rows updated, 0.2% inserted, 0.2% deleted."""
    with psycopg.connect(url, autocommit=True) as conn:
        step = 1000 // 6  # every 166th row: 0.6%
        conn.execute(
            f"UPDATE {table} SET updated_at = now(), amount = amount + 1, status = 'changed' WHERE id % {step} = 0"
        )
        conn.execute(
            f"INSERT INTO {table} SELECT id + {rows}, now(), customer_id, amount, status, payload, is_active, "
            f"event_date FROM {table} WHERE id <= {rows // 500}"
        )
        conn.execute(f"DELETE FROM {table} WHERE id % 500 = 7")


def main() -> int:
    """Run the comparison and print a Markdown table."""
    rows = int(os.environ.get("BENCH_CDC_ROWS", "10000000"))
    seed = int(os.environ.get("BENCH_SEED", "42"))
    admin = os.environ.get("BENCH_CDC_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5441/postgres")
    control_admin = os.environ.get(
        "BENCH_CONTROL_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    url = ensure_database(admin, DATABASE)
    control_url = ensure_database(control_admin, CONTROL_DATABASE)
    print(f"building the {rows:,}-row table on {urlsplit(admin).netloc} …", flush=True)
    table = ensure_table(url, rows, seed)
    keys = {
        strategy: prepare_control_row(
            control_url, source_url=url, db_type="postgresql", table=table, lake_key=f"cdc_{strategy}",
            load_strategy=strategy, delete_mode="hard", key_suffix=f".{strategy}",
        )
        for strategy in ("incremental", "cdc")
    }  # fmt: skip
    results = {}
    load_before = os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix="dataloader-bench-cdc-") as lake:
            for key in keys.values():
                _load(url, table, control_url, key, lake)
            _change(url, table, rows)
            results = {strategy: _load(url, table, control_url, key, lake) for strategy, key in keys.items()}
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                (DATABASE,),
            )
            for (publication,) in conn.execute("SELECT pubname FROM pg_publication").fetchall():
                conn.execute(f'DROP PUBLICATION "{publication}"')  # named like the slot; this database only
    print(
        f"\n`dataloader load` after 1% of {rows:,} rows changed (0.6% updated, 0.2% inserted, 0.2% deleted); "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print("| strategy | wall s | rows read | rows deleted | source CPU s | source rows read | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['rows_read']:,} | {r['rows_deleted']:,} | {r['source_cpu_s']:.1f} "
            f"| {r['source_rows_read']:,} | {r['peak_rss_mb']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
