"""`make bench`: build the source tables from a seed, run each variant in its own process N times,
print one table of medians with min/max, and the machine's load average before and after.

Environment: BENCH_ROWS (default 3,000,000; a comma list runs each size), BENCH_SEED (42),
BENCH_REPEAT (runs per variant, default 3), BENCH_VARIANTS (comma list, default all),
BENCH_POSTGRES_URL (admin URL; default the server at 127.0.0.1:5432, else the embedded one),
BENCH_MARIADB_URL (default mysql://root@127.0.0.1:3306/dataloader_bench; the MariaDB rows are
skipped with a note when it is unreachable).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from benchmarks.source_table import (
    change_recent_rows,
    ensure_database,
    ensure_mariadb_table,
    ensure_table,
    max_updated_at,
    restore_table,
)
from control_db import embedded
from control_db.urls import sqlalchemy_url

ALL_VARIANTS = [
    "ceiling",
    "dataloader_load",
    "dagster_run",
    "ours_full",
    "ours_incremental",
    "dataloader_load_incremental",
    "pandas_read_sql",
    "dlt_connectorx",
    "dlt_pyarrow",
    "mariadb_ceiling",
    "mariadb_dataloader_load",
]
BENCH_DB = "dataloader_bench"
CONTROL_DB = "dataloader_bench_control"
DAGSTER_DB = "dataloader_bench_dagster"
DEFAULT_MARIADB_URL = "mysql://root@127.0.0.1:3306/dataloader_bench"
# Which ceiling a variant's rate is a share of.
CEILING_OF = {"mariadb_dataloader_load": "mariadb_ceiling", "mariadb_ceiling": "mariadb_ceiling"}


def _admin_url() -> str:
    url = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(url, connect_timeout=3):
            return url
    except psycopg.OperationalError:
        return embedded.ensure_running()


def load_average() -> str:
    """The 1/5/15-minute load average, as `uptime` prints it."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _run_variant(name: str, ctx: dict) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.variants", name, json.dumps(ctx)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if done.returncode != 0:
        print(f"{name} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        return {"variant": name, "error": True}
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(runs: list[dict]) -> dict:
    """Median seconds and peak RSS of the runs that worked, with min/max seconds and their count."""
    ok = [r for r in runs if not r.get("error")]
    if not ok:
        return {**runs[0], "error": True}
    seconds = [r["seconds"] for r in ok]
    return {
        "variant": ok[0]["variant"],
        "rows": ok[0]["rows"],
        "seconds": statistics.median(seconds),
        "min": min(seconds),
        "max": max(seconds),
        "runs": len(ok),
        "failed_runs": len(runs) - len(ok),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in ok),
        "max_rss_mb": max(r["peak_rss_mb"] for r in ok),
    }


# The incremental variants: the name asked for in BENCH_VARIANTS -> the variant each run is.
INCREMENTAL = {
    "ours_incremental": "ours_incremental",
    "dataloader_load_incremental": "dataloader_load_incremental",
}


def _incremental(ctx: dict, flavours: list[str], repeat: int) -> dict[str, dict]:
    """1% incremental loads, each timed against its own copy of a Delta table, the source restored
    afterwards. Each flavour (`ours_incremental`: `run_load` in-process; `dataloader_load_incremental`:
    the `dataloader load` command against an incremental control row) first loads the whole table
    (untimed); then the most recent 1% of rows change and `<flavour>_first` times the first merge
    onto it (no unique-keys claim yet: it scans the keys once); one such merge is kept, the same rows
    change again, and `<flavour>` times the merge every later load makes (the claim covers the
    table: no key scan). Both flavours merge the same changes."""
    lake = Path(ctx["lake"])
    bases: dict[str, Path] = {}
    results: dict[str, dict] = {}
    for flavour in flavours:
        bases[flavour] = lake / flavour / "after_first_load"
        first = _run_variant(INCREMENTAL[flavour], {**ctx, "lake": str(bases[flavour]), "watermark": None})
        if first.get("error"):
            results[flavour] = {"variant": flavour, "error": True}
    flavours = [f for f in flavours if f not in results]
    url, table = ctx["source_url"], ctx["table"]
    try:
        for stage in ("_first", ""):
            watermark = max_updated_at(url, table)
            changed = change_recent_rows(url, table, 0.01)
            print(
                f"changed {changed:,} recent rows (1%) for the incremental{stage or ' (later)'} loads",
                flush=True,
            )
            runs: dict[str, list[dict]] = {flavour: [] for flavour in flavours}
            for i in range(repeat):  # rounds, as for the other variants
                for flavour in flavours:
                    target = lake / flavour / f"run{stage}_{i}"
                    shutil.copytree(bases[flavour], target)
                    run_ctx = {**ctx, "lake": str(target), "watermark": watermark}
                    runs[flavour].append(_run_variant(INCREMENTAL[flavour], run_ctx))
            for flavour in flavours:
                if stage:
                    bases[flavour] = lake / flavour / f"run{stage}_0"
                results[f"{flavour}{stage}"] = {**summarise(runs[flavour]), "variant": f"{flavour}{stage}"}
        return results
    finally:
        restore_table(url, table)


def _mariadb_table(url: str, rows: int, seed: int) -> str | None:
    try:
        return ensure_mariadb_table(url, rows, seed)
    except Exception as exc:  # no MariaDB here: the PostgreSQL rows still mean something
        print(f"MariaDB rows skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def run_size(rows: int, seed: int, variants: list[str], repeat: int, admin_url: str) -> str:
    """Build the tables for `rows`, run every variant `repeat` times, return the rendered table."""
    url = ensure_database(admin_url, BENCH_DB)
    control_url = ensure_database(admin_url, CONTROL_DB)
    dagster_url = sqlalchemy_url(ensure_database(admin_url, DAGSTER_DB), "psycopg2")
    mariadb_url = os.environ.get("BENCH_MARIADB_URL", DEFAULT_MARIADB_URL)
    print(f"building {rows:,}-row source tables from seed {seed} (cached between runs)...", flush=True)
    table = ensure_table(url, rows, seed)
    wanted = list(variants)
    if any(v.startswith("mariadb_") for v in wanted) and _mariadb_table(mariadb_url, rows, seed) is None:
        wanted = [v for v in wanted if not v.startswith("mariadb_")]
    results: dict[str, dict] = {}
    started, before = datetime.now(UTC), load_average()
    with tempfile.TemporaryDirectory(prefix="dataloader-bench-") as tmp:

        def context(name: str) -> dict:
            return {
                "source_url": url,
                "table": table,
                "rows": rows,
                "lake": str(Path(tmp) / name),
                "control_url": control_url,
                "dagster_url": dagster_url,
                "mariadb_url": mariadb_url,
            }

        # Rounds: every variant once per round, so a noisy stretch of a shared machine hits all
        # variants alike instead of all runs of one.
        plain = [name for name in wanted if name not in INCREMENTAL]
        runs: dict[str, list[dict]] = {name: [] for name in plain}
        for _ in range(repeat):
            for name in plain:
                runs[name].append(_run_variant(name, context(name)))
        for name in plain:
            results[name] = summarise(runs[name])
        flavours = [name for name in wanted if name in INCREMENTAL]
        if flavours:
            results.update(_incremental(context("incremental"), flavours, repeat))
        for name, r in results.items():
            if r.get("error"):
                print(f"{name}: failed (load average {load_average()})", flush=True)
            else:
                print(
                    f"{name}: median {r['seconds']:.2f} s (min {r['min']:.2f}, max {r['max']:.2f})",
                    flush=True,
                )
    after = load_average()
    header = (
        f"{rows:,} rows, seed {seed}, medians of {repeat}; started {started:%Y-%m-%d %H:%M} UTC; "
        f"load average before {before}, after {after}"
    )
    return header + "\n\n" + render_table(results, rows)


def main() -> int:
    sizes = [int(x) for x in os.environ.get("BENCH_ROWS", "3000000").split(",") if x]
    seed = int(os.environ.get("BENCH_SEED", "42"))
    variants = [v for v in os.environ.get("BENCH_VARIANTS", ",".join(ALL_VARIANTS)).split(",") if v]
    unknown = sorted(set(variants) - set(ALL_VARIANTS))
    if unknown:
        print(
            f"unknown BENCH_VARIANTS {', '.join(unknown)}; known: {', '.join(ALL_VARIANTS)}", file=sys.stderr
        )
        return 2
    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    admin_url = _admin_url()
    tables = [run_size(rows, seed, variants, repeat, admin_url) for rows in sizes]
    print("\n\n".join(tables))
    return 0 if all("| failed |" not in t for t in tables) else 1


def render_table(results: dict[str, dict], rows: int) -> str:
    """Seconds (median, min–max), rows/s, share of its ceiling's rate, peak RSS; then the ratios."""
    lines = [
        f"| variant ({rows:,} rows) | rows read | s (median) | min–max s | rows/s | share of ceiling rate "
        "| peak RSS (median / max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if r.get("error"):
            lines.append(f"| {name} | failed | | | | | |")
            continue
        rate = r["rows"] / r["seconds"] if r["rows"] else 0.0
        ceiling = results.get(CEILING_OF.get(name, "ceiling"))
        share = "-"
        # The ceiling share only means something for a read of the whole table.
        if ceiling and not ceiling.get("error") and r["rows"] == rows:
            share = f"{rate / (rows / ceiling['seconds']):.0%}"
        lines.append(
            f"| {name} | {r['rows']:,} | {r['seconds']:.2f} | {r['min']:.2f}–{r['max']:.2f} | {rate:,.0f} "
            f"| {share} | {r['peak_rss_mb']:.0f} / {r['max_rss_mb']:.0f} MB |"
        )
    lines.extend(ratios(results))
    return "\n".join(lines)


def ratios(results: dict[str, dict]) -> list[str]:
    """How many times faster `dataloader load` (and ours_full) ran than the other tools, by median."""

    def seconds(name: str) -> float | None:
        r = results.get(name)
        return None if r is None or r.get("error") else r["seconds"]

    out = [""]
    for ours in ("dataloader_load", "ours_full"):
        mine = seconds(ours)
        for other in ("dlt_connectorx", "dlt_pyarrow", "pandas_read_sql"):
            theirs = seconds(other)
            if mine and theirs:
                out.append(f"{ours} is {theirs / mine:.1f}x faster than {other}")
    run, command = seconds("dagster_run"), seconds("dataloader_load")
    if run and command:
        out.append(f"a Dagster run of the same load takes {run - command:.2f} s more than dataloader_load")
    if seconds("ours_full") and seconds("ours_incremental"):
        out.append(
            f"1% incremental is {seconds('ours_full') / seconds('ours_incremental'):.1f}x faster than ours_full"
        )
    return out


if __name__ == "__main__":
    raise SystemExit(main())
