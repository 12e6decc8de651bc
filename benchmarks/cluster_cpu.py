"""CPU seconds of a benchmark's own processes, on a machine other work shares (Linux /proc).

- Process sessions (`session_cpu`): every process the benchmark starts leads a session, and what it
  starts stays in it. A process's user+system time plus the time of the children it has reaped
  (cutime, cstime) covers everything below it that ended, so summing the four over the live members
  counts every process the session ever had — exactly, however short-lived — except a process
  orphaned to init.
- PostgreSQL backends of the benchmark's databases (`BackendSampler`): each connection's backend is a
  postmaster child, so they are sampled every 50 ms by their command line
  (`postgres: user database …`); a backend that lives less than that is missed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: str) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def session_cpu(sessions: Iterable[int]) -> float:
    """CPU seconds of every process the sessions ever had (the live ones and all they reaped)."""
    wanted = set(sessions)
    total = 0
    for pid in os.listdir("/proc"):
        fields = _stat(pid) if pid.isdigit() else None
        if fields and int(fields[3]) in wanted:
            total += sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
    return total / TICKS


def process_cpu(names: Iterable[str]) -> float:
    """CPU seconds (own, not children's) of the live processes whose name is one of `names`."""
    wanted = set(names)
    total = 0
    for pid in os.listdir("/proc"):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip() if pid.isdigit() else ""
        except OSError:
            continue
        if name in wanted and (fields := _stat(pid)):
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


class BackendSampler:
    """CPU seconds of the PostgreSQL backends connected to any of `databases`, sampled until stop()."""

    def __init__(self, databases: Iterable[str], interval_s: float = 0.05) -> None:
        self.databases = tuple(databases)
        self.interval_s = interval_s
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BackendSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> float:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        return self.total()

    def total(self) -> float:
        return sum(self.seen.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if command.startswith(b"postgres: ") and any(d.encode() in command for d in self.databases):
                    fields = _stat(pid)
                    if fields:
                        self.seen[pid] = (int(fields[11]) + int(fields[12])) / TICKS
            self._stop.wait(self.interval_s)
