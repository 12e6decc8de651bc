"""`make bench-partition`: a large change merged into a partitioned table, pruned or not.

The benchmark table (`BENCH_PARTITION_ROWS`, default 3,000,000; `BENCH_SEED`) gets three incremental
control rows partitioned by `event_date` (a day per partition), each loaded whole with `dataloader
load` (untimed). Then the most recent 1% of rows change (their day's partitions) and each row's next
`dataloader load CONTROL_KEY` is timed, in its own process, as a user runs it:

- `held`: the change held in memory (the default for a read under `DATALOADER_SMALL_READ_MB`);
- `spooled`: every read treated as large (`DATALOADER_SMALL_READ_MB=0`): spooled to local disk, then
  merged as a stream with the pruning term (lake/spool.py);
- `streamed, unpruned`: the same with `DATALOADER_SPOOL_MAX_MB=0`, what every large read did before.

Printed: wall seconds, peak RSS, and from the MERGE's own commit the target files it rewrote
(delta-rs 1.6's scanned/skipped file counts of a streamed merge are not reliable, so they are left out). Environment: BENCH_POSTGRES_URL (admin URL, default 127.0.0.1:5432), the control
database on the same server.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from benchmarks.control_rows import prepare_control_row
from benchmarks.source_table import change_recent_rows, ensure_database, ensure_table, restore_table
from benchmarks.user_load import timed_dataloader_load

SOURCE_DATABASE = "dataloader_bench"
CONTROL_DATABASE = "dataloader_bench_partition_control"
VARIANTS = {
    "held": {},
    "spooled": {"DATALOADER_SMALL_READ_MB": "0"},
    "streamed, unpruned": {"DATALOADER_SMALL_READ_MB": "0", "DATALOADER_SPOOL_MAX_MB": "0"},
}


def _merge_metrics(lake: str, destination: str) -> dict:
    """The newest commit's operation metrics (the load's MERGE)."""
    log = Path(lake, destination, "_delta_log")
    newest = max(log.glob("*.json"), key=lambda path: int(path.stem))
    for line in newest.read_text().splitlines():
        action = json.loads(line)
        if "commitInfo" in action:
            return action["commitInfo"].get("operationMetrics", {})
    return {}


def main() -> int:
    """Run the three variants and print a Markdown table."""
    rows = int(os.environ.get("BENCH_PARTITION_ROWS", "3000000"))
    seed = int(os.environ.get("BENCH_SEED", "42"))
    admin = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    source_url = ensure_database(admin, SOURCE_DATABASE)
    control_url = ensure_database(admin, CONTROL_DATABASE)
    print(f"building the {rows:,}-row table …", flush=True)
    table = ensure_table(source_url, rows, seed)
    keys = {
        name: prepare_control_row(
            control_url, source_url=source_url, db_type="postgresql", table=table,
            lake_key=f"part_{index}", load_strategy="incremental", key_suffix=f".part{index}",
            partition_by=["event_date"],
        )
        for index, name in enumerate(VARIANTS)
    }  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory(prefix="dataloader-bench-partition-") as lake:
        try:
            for key in keys.values():
                timed_dataloader_load(control_url, key, lake)
            changed = change_recent_rows(source_url, table, 0.01)
            load_before = os.getloadavg()[0]
            for index, (name, env) in enumerate(VARIANTS.items()):
                measured = timed_dataloader_load(control_url, keys[name], lake, env)
                results[name] = {**measured, **_merge_metrics(lake, f"bronze/bench/part_{index}")}
        finally:
            restore_table(source_url, table)
    print(
        f"\n`dataloader load` of {changed:,} changed rows (the newest 1% of {rows:,}) into a table "
        f"partitioned by event_date; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    print("| merge | wall s | peak RSS MB | files rewritten |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} | {r.get('num_target_files_removed', '?')} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
