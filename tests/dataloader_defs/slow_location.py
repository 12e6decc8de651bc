"""The real dataloader_defs code location, with run processes too slow to start.

Test-only: read by the tests that drive `dagster-daemon` on a busy machine, never by the product.
The first DATALOADER_TEST_SLOW_RUNS run processes that load this location (each counted once in the
file DATALOADER_TEST_SLOW_LEDGER) spend DATALOADER_TEST_SLOW_RUN_S seconds loading definitions and
then give up, as a run worker on an overloaded host does when its calls miss their deadline: Dagster
fails those runs before their step ever starts (what a run that exceeds
`run_monitoring.start_timeout_seconds` also ends as, but without waiting minutes for it). The code
server itself (the parent of every run process) loads at full speed.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sys
import time


def _slow_run_start() -> None:
    seconds = float(os.environ.get("DATALOADER_TEST_SLOW_RUN_S") or 0)
    ledger = os.environ.get("DATALOADER_TEST_SLOW_LEDGER")
    if not seconds or not ledger:
        return
    in_a_run = multiprocessing.parent_process() is not None or "execute_run" in sys.argv
    if not in_a_run:
        return
    with open(ledger, "a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        slowed = len(file.read().split())
        if slowed >= int(os.environ.get("DATALOADER_TEST_SLOW_RUNS") or 0):
            return
        file.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    raise TimeoutError(f"test: the run process gave up loading definitions after {seconds:.0f}s")


_slow_run_start()

from dataloader_defs.definitions import defs  # noqa: E402

__all__ = ["defs"]
