"""Child-process body of the queue race test (importable by spawned processes; no pytest here)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from control_db import queries as q

IN_FLIGHT_BACKFILLS = """
SELECT count(*) FROM dataloader.table_control
WHERE load_strategy = 'chunked_backfill' AND last_status IN ('Queued', 'In Progress') AND db_config_key = %s
"""


def cycle_loads(url: str, rounds: int, barrier: Any, results: Any) -> None:
    """Queue ready tables `rounds` times; run each queued one through In Progress -> Failed -> retry.

    Puts (queued, guard_failures, backfill_violations) on `results`. A table queued twice at once
    would make one owner's guarded transitions fail.
    """
    queued = guard_failures = backfill_violations = 0
    with q.connect(url, f"race-{os.getpid()}") as conn:
        barrier.wait()
        for _ in range(rounds):
            for load in q.queue_ready_tables(conn, limit=3):
                queued += 1
                if load.load_strategy == "chunked_backfill":
                    row = conn.execute(IN_FLIGHT_BACKFILLS, (load.db_config_key,)).fetchone()
                    backfill_violations += row is None or row[0] != 1
                key = load.control_key
                started = q.mark_in_progress(
                    conn, key, run_id=f"run-{load.history_id}", history_id=load.history_id
                )
                guard_failures += started != load.history_id
                guard_failures += not q.mark_failed(
                    conn, key, message="race", history_id=load.history_id, kind="transient"
                )
                guard_failures += not q.reset_for_retry(conn, key, backoff=timedelta(0), reason="race")
    results.put((queued, guard_failures, backfill_violations))
