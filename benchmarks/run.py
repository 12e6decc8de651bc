"""`make bench`: build the source table, run each variant in its own process, print one table.

Environment: BENCH_ROWS (default 5,000,000), BENCH_POSTGRES_URL (admin URL; default the server at
127.0.0.1:5432, else the embedded one), BENCH_VARIANTS (comma list, default all), BENCH_REPEAT
(median of N runs, default 1).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from benchmarks.source_table import change_recent_rows, ensure_table, max_updated_at, restore_table
from control_db import embedded

ALL_VARIANTS = [
    "ceiling",
    "ours_full",
    "ours_incremental",
    "pandas_read_sql",
    "dlt_connectorx",
    "dlt_pyarrow",
]
BENCH_DB = "dataloader_bench"


def _admin_url() -> str:
    url = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.OperationalError:
        return embedded.ensure_running()


def _bench_db_url(admin_url: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,)).fetchone():
            conn.execute(f'CREATE DATABASE "{BENCH_DB}"')
    return urlunsplit(urlsplit(admin_url)._replace(path=f"/{BENCH_DB}"))


def _run_variant(name: str, url: str, lake: Path, watermark: str | None) -> dict:
    args = [sys.executable, "-m", "benchmarks.variants", name, url, str(lake)]
    if watermark:
        args.append(watermark)
    done = subprocess.run(
        args, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
    )
    if done.returncode != 0:
        print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return {"variant": name, "error": True}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _incremental(url: str, lake: Path, repeat: int) -> dict:
    """The incremental table's first load (untimed; it reads everything), then change the most recent
    1% of rows and time incremental loads of them, each against a fresh copy of the loaded Delta
    table; the source is restored afterwards."""
    base = lake / "after_first_load"
    loaded = _run_variant("ours_incremental", url, base, None)
    if loaded.get("error"):
        return {"variant": "ours_incremental", "error": True}
    watermark = max_updated_at(url)
    try:
        changed = change_recent_rows(url, 0.01)
        print(f"changed {changed:,} recent rows (1%)", flush=True)
        runs = []
        for i in range(repeat):
            target = lake / f"run{i}"
            shutil.copytree(base, target)
            runs.append(_run_variant("ours_incremental", url, target, watermark))
        return _median(runs)
    finally:
        restore_table(url)


def _median(runs: list[dict]) -> dict:
    ok = [r for r in runs if not r.get("error")]
    if not ok:
        return runs[0]
    best = sorted(ok, key=lambda r: r["seconds"])[len(ok) // 2]
    return {**best, "seconds": statistics.median(r["seconds"] for r in ok)}


def main() -> int:
    rows = int(os.environ.get("BENCH_ROWS", "5000000"))
    variants = [v for v in os.environ.get("BENCH_VARIANTS", ",".join(ALL_VARIANTS)).split(",") if v]
    repeat = int(os.environ.get("BENCH_REPEAT", "1"))
    url = _bench_db_url(_admin_url())
    print(f"building {rows:,}-row source table (cached between runs)...", flush=True)
    ensure_table(url, rows)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="dataloader-bench-") as tmp:
        lake = Path(tmp)
        for name in variants:
            if name == "ours_incremental":
                results[name] = _incremental(url, lake / name, repeat)
            else:
                results[name] = _median([_run_variant(name, url, lake / name, None) for _ in range(repeat)])
            print(f"{name}: {results[name].get('seconds', float('nan')):.1f} s", flush=True)
    print(render_table(results, rows))
    return 0 if all(not r.get("error") for r in results.values()) else 1


def render_table(results: dict[str, dict], rows: int) -> str:
    """The result table: seconds, rows/s, share of the ceiling's rate, peak RSS."""
    ceiling_rate = None
    if "ceiling" in results and not results["ceiling"].get("error"):
        ceiling_rate = rows / results["ceiling"]["seconds"]
    lines = [
        f"| variant ({rows:,} rows) | rows read | s | rows/s | share of ceiling rate | peak RSS |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if r.get("error"):
            lines.append(f"| {name} | failed | | | | |")
            continue
        rate = r["rows"] / r["seconds"] if r["rows"] else 0.0
        # The ceiling share only means something for a read of the whole table.
        share = f"{rate / ceiling_rate:.0%}" if ceiling_rate and r["rows"] == rows else "-"
        lines.append(
            f"| {name} | {r['rows']:,} | {r['seconds']:.1f} | {rate:,.0f} | {share} | {r['peak_rss_mb']:.0f} MB |"
        )
    lines.extend(_ratios(results))
    return "\n".join(lines)


def _ratios(results: dict[str, dict]) -> list[str]:
    def seconds(name: str) -> float | None:
        r = results.get(name)
        return None if r is None or r.get("error") else r["seconds"]

    out = [""]
    full = seconds("ours_full")
    for other in ("dlt_connectorx", "dlt_pyarrow", "pandas_read_sql"):
        if full and seconds(other):
            out.append(f"ours_full is {seconds(other) / full:.1f}x faster than {other}")
    if full and seconds("ours_incremental"):
        out.append(f"1% incremental is {full / seconds('ours_incremental'):.1f}x faster than ours_full")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
