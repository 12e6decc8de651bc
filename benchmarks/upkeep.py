"""Upkeep benchmarks (printed, not asserted): delete reconciliation and maintenance.

1. Key reconciliation: a loaded N-row table, 1% of its rows deleted at the source; one load with
   `delete_mode hard` in its own process (seconds, peak RSS, rows deleted).
2. History: the same table after BENCH_UPKEEP_LOADS (default 100) incremental loads of 1% changes
   (half updates of recent rows, half new rows): data files, and the time of one more 1% merge
   before maintenance, after `optimize.compact` and after z-order by the primary key.

Environment: BENCH_ROWS (default 5,000,000; keep it small on a shared machine, e.g. 200000),
BENCH_UPKEEP_LOADS (100), BENCH_POSTGRES_URL as for `make bench`.
Run: `python -m benchmarks.upkeep`.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.run import _admin_url
from benchmarks.source_table import ensure_table

UPKEEP_TABLE = "bench_upkeep"
MERGE_REPEAT = 3
DESTINATION = "bronze/bench/upkeep"
# Its own database: `make bench` caches its 5M-row table in dataloader_bench, which a smaller
# BENCH_ROWS here would otherwise rebuild.
UPKEEP_DB = "dataloader_bench_upkeep"


def _upkeep_db_url(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (UPKEEP_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{UPKEEP_DB}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{UPKEEP_DB}"))


def _request(url: str, lake: Path, watermark: str | None = None, *, delete_mode: str = "none"):
    from benchmarks.variants import _request as bench_request

    return bench_request(url, lake, "incremental", watermark, table=UPKEEP_TABLE, delete_mode=delete_mode)


_source = {"table": ""}  # the seeded source table main() built (benchmarks.source_table names it by size)


def _fresh_copy(url: str) -> None:
    source = _source["table"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {UPKEEP_TABLE}")
        conn.execute(f"CREATE TABLE {UPKEEP_TABLE} AS SELECT * FROM {source} ORDER BY id")
        conn.execute(f"ALTER TABLE {UPKEEP_TABLE} ADD PRIMARY KEY (id)")
        conn.execute(f"CREATE INDEX ON {UPKEEP_TABLE} (updated_at)")
        conn.execute(f"ANALYZE {UPKEEP_TABLE}")


def _change_one_percent(url: str, round_no: int) -> None:
    """0.5% of the rows updated (among the most recent 10% of keys), 0.5% new rows; stamped now()."""
    with psycopg.connect(url, autocommit=True) as conn:
        (max_id, rows) = conn.execute(f"SELECT max(id), count(*) FROM {UPKEEP_TABLE}").fetchone()
        half = max(1, rows // 200)
        conn.execute(
            f"UPDATE {UPKEEP_TABLE} SET updated_at = clock_timestamp(), amount = amount + 1 "
            f"WHERE id IN (SELECT id FROM {UPKEEP_TABLE} WHERE id > %s ORDER BY (id * 7919 + %s) %% 104729 "
            "LIMIT %s)",
            (int(max_id * 0.9), round_no, half),
        )
        conn.execute(
            f"INSERT INTO {UPKEEP_TABLE} SELECT id + %s, clock_timestamp(), customer_id, amount, status, "
            f"payload, is_active, event_date FROM {UPKEEP_TABLE} WHERE id > %s",
            (half, max_id - half),
        )


def _files(lake: Path) -> int:
    from dataloader_contract.request import table_uri
    from pipes_workers.lake.session import DeltaSession

    files = DeltaSession(table_uri(lake, DESTINATION)).files()
    return files.files if files else 0


def _timed_merge(url: str, base: Path, target: Path, watermark: str, maintain: str | None) -> dict:
    """Copy the lake, optionally maintain it, then time the pending 1% merge on copies of that
    (median of MERGE_REPEAT)."""
    from pipes_workers.load import run_load
    from pipes_workers.maintain import maintain_table
    from pipes_workers.maintenance_request import MaintenanceRequest

    shutil.copytree(base, target)
    maintenance_s = 0.0
    if maintain:
        os.environ["DATALOADER_MAINTENANCE_Z_ORDER"] = "on" if maintain == "z_order" else "off"
        request = MaintenanceRequest("bench", DESTINATION, str(target), "incremental", ("id",))
        maintenance_s = maintain_table(request, log=lambda _m: None).seconds
    times = []
    for attempt in range(MERGE_REPEAT):
        copy = target.with_name(f"{target.name}-{attempt}")
        shutil.copytree(target, copy)
        started = time.monotonic()
        run_load(_request(url, copy, watermark), log=lambda _m: None)
        times.append(time.monotonic() - started)
        shutil.rmtree(copy)
    return {
        "files": _files(target),
        "merge_s": round(statistics.median(times), 2),
        "maintenance_s": maintenance_s,
    }


def history(url: str, loads: int) -> list[dict]:
    """The table after `loads` incremental 1% loads: files and 1% merge time before/after maintenance."""
    from pipes_workers.load import run_load

    _fresh_copy(url)
    with tempfile.TemporaryDirectory(prefix="dataloader-upkeep-") as tmp:
        base = Path(tmp) / "base"
        result = run_load(_request(url, base), log=lambda _m: None)
        watermark = result.watermark_after
        load_seconds = []
        for round_no in range(loads):
            _change_one_percent(url, round_no)
            started = time.monotonic()
            watermark = run_load(_request(url, base, watermark), log=lambda _m: None).watermark_after
            load_seconds.append(time.monotonic() - started)
            if (round_no + 1) % 25 == 0:
                recent = statistics.median(load_seconds[-5:])
                print(
                    f"  {round_no + 1} loads: {_files(base)} files, last 5 loads {recent:.2f} s each",
                    flush=True,
                )
        first = statistics.median(load_seconds[:5])
        print(f"  the 1% load took {first:.2f} s (median of loads 1-5) when the table was fresh", flush=True)
        _change_one_percent(url, loads)
        assert watermark is not None
        return [
            {"layout": name, **_timed_merge(url, base, Path(tmp) / name, watermark, how)}
            for name, how in (
                (f"after {loads} loads", None),
                ("compacted", "compact"),
                ("z-ordered", "z_order"),
            )
        ]


def reconcile_child(url: str, lake: str) -> None:
    """In its own process: one hard-delete load; prints seconds, peak RSS and rows deleted."""
    from dataloader_contract.request import table_uri
    from pipes_workers.lake.session import DeltaSession
    from pipes_workers.load import run_load

    state = DeltaSession(table_uri(lake, DESTINATION)).state(f"bench.public.{UPKEEP_TABLE}")
    started = time.monotonic()
    result = run_load(
        _request(url, Path(lake), state.last_watermark, delete_mode="hard"), log=lambda _m: None
    )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": round(time.monotonic() - started, 2),
                "peak_rss_mb": round(peak_mb),
                "rows_deleted": result.rows_deleted,
            }
        )
    )


def reconciliation(url: str) -> dict:
    """A loaded table with 1% of its source rows deleted, reconciled in a fresh process."""
    from pipes_workers.load import run_load

    _fresh_copy(url)
    with tempfile.TemporaryDirectory(prefix="dataloader-deletes-") as tmp:
        run_load(_request(url, Path(tmp)), log=lambda _m: None)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DELETE FROM {UPKEEP_TABLE} WHERE id % 100 = 7")
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.upkeep", "reconcile", url, tmp],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    rows = int(os.environ.get("BENCH_ROWS", "5000000"))
    loads = int(os.environ.get("BENCH_UPKEEP_LOADS", "100"))
    url = _upkeep_db_url(_admin_url())
    print(f"building {rows:,}-row source table (cached between runs)...", flush=True)
    _source["table"] = ensure_table(url, rows, int(os.environ.get("BENCH_SEED", "42")))
    found = reconciliation(url)
    print(f"\nkey reconciliation, {rows:,} rows, 1% deleted at the source (one hard-delete load):")
    print(
        f"  {found['rows_deleted']:,} rows deleted in {found['seconds']} s, peak RSS {found['peak_rss_mb']} MB"
    )
    print(f"\n{loads} incremental loads of 1% changes on {rows:,} rows:")
    print("| layout | data files | maintenance s | next 1% merge s |\n|---|---:|---:|---:|")
    for line in history(url, loads):
        print(f"| {line['layout']} | {line['files']} | {line['maintenance_s']} | {line['merge_s']} |")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "reconcile":
        reconcile_child(sys.argv[2], sys.argv[3])
    else:
        sys.exit(main())
