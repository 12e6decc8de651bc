"""A control-database outage when `dataloader load` finishes never leaves a row In Progress (issue 23).

The load reaches the control database through a relay the test takes down once the load has
started (the load itself needs no control-database connection) and brings back later. Within
DATALOADER_OUTCOME_RETRY_S the load records its own outcome; past it, it exits 2 and the row stays
In Progress for its run until the next command finds that run's process gone.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from control_relay import ControlRelay
from loadtest_support import SourceDB, assert_same_rows
from test_local_load import events_row

from control_db.local_runs import parse_local_run
from pipes_workers.local_load import load_control_key


@pytest.fixture
def relay(control_db_url: str) -> Iterator[ControlRelay]:
    relay = ControlRelay(control_db_url)
    yield relay
    relay.close()


def _start_load(relay: ControlRelay, key: str, lake_root: Path, **env: str) -> subprocess.Popen[str]:
    """`dataloader load KEY` through the relay; the relay goes down at the load's first progress line
    (after the attempt is In Progress, before the outcome is written)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "control_db.cli", "load", key],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "DATALOADER_CONTROL_DB_URL": relay.url_through(),
            "DATALOADER_LAKE_ROOT": str(lake_root),
            **env,
        },
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    relay.down()
    if " load of " not in first:
        process.kill()
        pytest.fail(f"unexpected first line {first!r}: {process.communicate()[1]}")
    return process


def _history(conn: psycopg.Connection, key: str) -> list[tuple]:
    return conn.execute(
        "SELECT load_status, rows_processed, run_id, error_message, load_end_time IS NOT NULL "
        "FROM dataloader.historical_metadata WHERE control_key = %s ORDER BY id",
        (key,),
    ).fetchall()


def _row(conn: psycopg.Connection, key: str) -> tuple:
    return conn.execute(
        "SELECT last_status, last_rows_processed, last_run_id, last_error_code "
        "FROM dataloader.table_control WHERE control_key = %s",
        (key,),
    ).fetchone()


def test_an_outage_longer_than_the_old_15_s_is_outlasted_and_the_outcome_recorded(
    control_conn: psycopg.Connection,
    pg_source: SourceDB,
    lake_root: Path,
    relay: ControlRelay,
) -> None:
    """Before: 4 tries 1+2+4+8 s apart, then `could not record the outcome` (exit 2), row In Progress."""
    _, key = events_row(control_conn, pg_source, 3)
    process = _start_load(relay, key, lake_root)

    assert relay.wait_refused(4, timeout_s=60), "the load never tried to record its outcome"
    relay.up()  # back after ~7 s of refusals: the old code had given up on its 4th try
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 0, stderr
    assert _row(control_conn, key)[:2] == ("Succeeded", 3)
    ((status, rows, run_id, _, closed),) = _history(control_conn, key)
    assert (status, rows, closed) == ("Succeeded", 3, True)
    run = parse_local_run(run_id)
    assert run is not None and (run.host, run.pid) == (socket.gethostname(), process.pid)


def test_a_load_that_could_not_record_its_outcome_is_closed_by_the_next_load(
    control_conn: psycopg.Connection,
    control_db_url: str,
    pg_source: SourceDB,
    lake_root: Path,
    relay: ControlRelay,
) -> None:
    """Before: the next load refused (`cannot start: last_status is 'In Progress'`), and the committed
    attempt's history row stayed In Progress for good."""
    table, key = events_row(control_conn, pg_source, 3)
    process = _start_load(relay, key, lake_root, DATALOADER_OUTCOME_RETRY_S="2")
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 2, stderr
    status, _, dead_run, _ = _row(control_conn, key)
    assert status == "In Progress" and f"-{process.pid}-" in dead_run
    assert relay.refused >= 2  # it did retry

    retried = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)

    # The retry resumes from the Delta table's watermark, which the unrecorded load committed.
    assert retried.succeeded and retried.committed_by_run == dead_run and retried.rows_read == 0
    assert _row(control_conn, key)[:2] == ("Succeeded", 0)
    (dead_status, rows_a, run_a, note, closed_a), (status_b, rows_b, run_b, _, closed_b) = _history(
        control_conn, key
    )
    # How many rows the unrecorded load read is known only to the process that ended: left NULL.
    assert (dead_status, rows_a, run_a, closed_a) == ("Succeeded", None, dead_run, True)
    assert "corrected by the next load (was: Failed: run " in note and "ended but the row" in note
    assert (status_b, rows_b, closed_b) == ("Succeeded", 0, True) and run_b != dead_run
    request = pg_source.request(table, "incremental", lake_root, destination_table=f"bronze/test/{table}")
    assert_same_rows(pg_source, table, request)
    in_progress = control_conn.execute(
        "SELECT count(*) FROM dataloader.historical_metadata WHERE load_status IN ('Queued', 'In Progress')"
    ).fetchone()
    assert in_progress == (0,)
    assert "could not record the outcome" in stderr and "the load succeeded" in stderr
    assert f"stays In Progress for run {dead_run}" in stderr
