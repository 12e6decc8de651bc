"""Several processes queueing at once, over many rounds, never queue a row twice."""

from __future__ import annotations

import multiprocessing
import sys

import psycopg
import pytest
from control_rows import BACKFILL, insert_table
from queue_race_worker import cycle_loads

PROCESSES = 3
ROUNDS = 15


def test_concurrent_queueing_never_double_queues(
    control_conn: psycopg.Connection, control_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children re-import __main__ (pytest itself, ~1.5 s of CPU each); they only need the worker.
    main = sys.modules["__main__"]
    monkeypatch.setattr(main, "__spec__", None, raising=False)
    monkeypatch.delattr(main, "__file__", raising=False)

    for number in range(5):
        insert_table(control_conn, f"erp.public.t{number}", max_retries=1_000_000)
    for number in range(3):
        insert_table(control_conn, f"erp.public.big{number}", max_retries=1_000_000, **BACKFILL)

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=cycle_loads, args=(control_db_url, ROUNDS, barrier, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0

    queued = sum(outcome[0] for outcome in outcomes)
    assert sum(outcome[1] for outcome in outcomes) == 0, "a guarded transition failed: a row was taken twice"
    assert sum(outcome[2] for outcome in outcomes) == 0, "two chunked_backfills of one source were in flight"
    assert queued > ROUNDS  # the processes really competed for the same rows

    transitions = control_conn.execute(
        """
        SELECT count(*) FILTER (WHERE new_values ->> 'last_status' = 'Queued'),
               count(*) FILTER (WHERE new_values ->> 'last_status' = 'Queued'
                                AND old_values ->> 'last_status' = 'Queued')
        FROM dataloader.table_control_history WHERE change_type = 'UPDATE'
        """
    ).fetchone()
    assert transitions == (queued, 0)
    history = control_conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE load_end_time IS NULL) FROM dataloader.historical_metadata"
    ).fetchone()
    assert history == (queued, 0)
