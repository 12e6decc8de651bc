"""Where a batched throughput run's CPU goes, by kind of process: `python -m benchmarks.process_cpu`.

Runs the batched variant of `make bench-throughput` (60 tables, DATALOADER_RUN_BATCH=12,
DATALOADER_RUN_CONCURRENCY=4) while sampling /proc every 50 ms, and prints the CPU seconds each kind
of process used during it (Pipes workers, run processes, the daemon, PostgreSQL…), with how many
processes of each kind it saw. Linux only; a process that lives less than 50 ms may be missed.
"""

from __future__ import annotations

import os
import threading
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.throughput import SOURCES, run_system

TICKS = os.sysconf("SC_CLK_TCK")
KINDS = (
    ("multiprocessing.forkserver", "fork server"),
    ("pipes_workers.dataloader_pipe", "Pipes worker (fresh process)"),
    ("multiprocessing.spawn", "run process"),
    ("api grpc", "code server"),
    ("dagster-daemon", "daemon"),
    ("postgres", "PostgreSQL"),
)


def _cpu_seconds(pid: str) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICKS


def _kind(pid: str, parent_kinds: dict[str, str]) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except (OSError, IndexError):
        return "other"
    if parent_kinds.get(parent) == "fork server":
        return "Pipes worker (forked)"
    return next((name for needle, name in KINDS if needle in command), "other")


def sample(stop: threading.Event) -> dict[str, tuple[float, int]]:
    """CPU seconds and process count per kind, from now until `stop` is set."""
    base = {
        pid: cpu for pid in os.listdir("/proc") if pid.isdigit() and (cpu := _cpu_seconds(pid)) is not None
    }
    seen: dict[str, tuple[str, float]] = {}
    kinds: dict[str, str] = {}
    while not stop.is_set():
        # In pid order, so a fork server is usually classified before the workers it forked.
        for pid in sorted((p for p in os.listdir("/proc") if p.isdigit()), key=int):
            cpu = _cpu_seconds(pid)
            if cpu is None:
                continue
            # Classified on every sighting: a process seen between its fork and its exec still
            # shows its parent's command line, and an exiting one shows none ("other": kept out).
            kind = _kind(pid, kinds)
            if kind != "other" or pid not in kinds:
                kinds[pid] = kind
            seen[pid] = (kinds[pid], cpu)
        time.sleep(0.05)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for pid, (kind, cpu) in seen.items():
        totals[kind][0] += cpu - base.get(pid, 0.0)
        totals[kind][1] += 1
    return {kind: (seconds, int(count)) for kind, (seconds, count) in totals.items()}


def main() -> int:
    stop = threading.Event()
    found: dict[str, dict[str, tuple[float, int]]] = {}
    sampler = threading.Thread(target=lambda: found.update(cpu=sample(stop)))
    sampler.start()
    try:
        result = run_system(
            "batched runs (12 tables, 4 at a time)", batch=12, concurrency=4, tables=20, rows=2000
        )
    finally:
        stop.set()
        sampler.join()
    print(f"{SOURCES * 20} tables, {result['succeeded']} succeeded, {result['seconds']} s wall")
    print("| process | CPU s | processes |")
    print("|---|---:|---:|")
    for kind, (seconds, count) in sorted(found["cpu"].items(), key=lambda item: -item[1][0]):
        if seconds >= 0.05:
            print(f"| {kind} | {seconds:.1f} | {count} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
