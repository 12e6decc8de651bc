"""Rows a `dataloader load` left In Progress after its process ended are failed like a lost Dagster
run, by `dataloader load` and `dataloader reset` of the row (issue 23); a live process's row, a
reused pid and another host's run are told apart by the run id (host, pid, process start)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from control_rows import insert_table

from control_db import cli
from control_db.lifecycle import Attempt, Refusal, begin_attempt
from control_db.local_runs import (
    fail_dead_local_runs,
    new_local_run_id,
    parse_local_run,
    process_start,
)
from control_db.outcome_retry import OUTCOME_RETRY_ENV, outcome_retry_seconds, retry_pauses

HOST = socket.gethostname()


@pytest.fixture
def ended_process() -> Iterator[tuple[int, int]]:
    """(pid, start) of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    start = process_start(process.pid)
    process.kill()
    process.wait()
    assert start is not None and process_start(process.pid) is None
    yield process.pid, start


def _run_id(host: str, pid: int, start: int) -> str:
    return f"local-{host}-{pid}-{start}-0123abcd"


def _started(url: str, key: str, run_id: str) -> Attempt:
    attempt = begin_attempt(url, key, run_id=run_id, history_id=None)
    assert isinstance(attempt, Attempt), attempt
    return attempt


def _row(conn: psycopg.Connection, key: str) -> tuple:
    return conn.execute(
        "SELECT last_status, last_error_kind, last_error_code, last_status_message "
        "FROM dataloader.table_control WHERE control_key = %s",
        (key,),
    ).fetchone()


def _attempt(conn: psycopg.Connection, history_id: int) -> tuple:
    return conn.execute(
        "SELECT load_status, error_code, load_end_time IS NOT NULL FROM dataloader.historical_metadata "
        "WHERE id = %s",
        (history_id,),
    ).fetchone()


def test_run_ids_name_this_host_and_process() -> None:
    run = parse_local_run(new_local_run_id())
    assert run is not None and (run.host, run.pid, run.start) == (
        HOST,
        os.getpid(),
        process_start(os.getpid()),
    )
    assert run.on_this_host and not run.is_gone()
    assert parse_local_run("local-vm-4242-5b74ee3e") is None  # made before ids carried the start
    assert parse_local_run("8b1e3c9a-0d5f-4c6e-9a7b-2f1d3e4c5b6a") is None  # a Dagster run


def test_reset_fails_a_row_whose_load_process_is_gone(
    control_conn: psycopg.Connection,
    control_db_url: str,
    ended_process: tuple[int, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Before: `dataloader reset: … is In Progress; wait for its run to finish`, for good."""
    insert_table(control_conn, "erp.public.orders")
    dead = _run_id(HOST, *ended_process)
    attempt = _started(control_db_url, "erp.public.orders", dead)
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)

    assert cli.main(["reset", "erp.public.orders"]) == 0, capsys.readouterr().err

    assert "reset (was Failed)" in capsys.readouterr().out
    assert _row(control_conn, "erp.public.orders")[0] is None
    assert _attempt(control_conn, attempt.history_id) == ("Failed", "run_lost", True)


def test_a_load_takes_over_a_row_whose_load_process_is_gone(
    control_conn: psycopg.Connection, control_db_url: str, ended_process: tuple[int, int]
) -> None:
    """Before: `cannot start: last_status is 'In Progress' (run local-… is loading it)`."""
    insert_table(control_conn, "erp.public.orders")
    dead = _run_id(HOST, *ended_process)
    first = _started(control_db_url, "erp.public.orders", dead)

    second = _started(control_db_url, "erp.public.orders", new_local_run_id())

    assert second.history_id != first.history_id
    assert _attempt(control_conn, first.history_id) == ("Failed", "run_lost", True)
    assert _row(control_conn, "erp.public.orders")[0] == "In Progress"  # the new attempt's
    history = control_conn.execute(
        "SELECT error_message FROM dataloader.historical_metadata WHERE id = %s", (first.history_id,)
    ).fetchone()
    assert history == (
        f"run {dead} (process {ended_process[0]} on {HOST}) ended but the row was still In Progress",
    )


def test_a_live_load_a_reused_pid_and_another_hosts_run(
    control_conn: psycopg.Connection, control_db_url: str, ended_process: tuple[int, int]
) -> None:
    own_start = process_start(os.getpid())
    assert own_start
    runs = {
        "erp.public.alive": _run_id(HOST, os.getpid(), own_start),
        # this pid is alive, but it is not the process that started at `own_start - 1`
        "erp.public.reused": _run_id(HOST, os.getpid(), own_start - 1),
        "erp.public.elsewhere": _run_id("another-host.example", *ended_process),
        "erp.public.gone": _run_id(HOST, *ended_process),
    }
    for key, run_id in runs.items():
        insert_table(control_conn, key)
        _started(control_db_url, key, run_id)

    refused = begin_attempt(control_db_url, "erp.public.alive", run_id=new_local_run_id(), history_id=None)
    assert isinstance(refused, Refusal) and refused.taken_over_by == runs["erp.public.alive"]

    assert sorted(fail_dead_local_runs(control_conn)) == ["erp.public.gone", "erp.public.reused"]
    assert _row(control_conn, "erp.public.reused")[:3] == ("Failed", "transient", "run_lost")
    assert _row(control_conn, "erp.public.alive")[0] == "In Progress"
    assert _row(control_conn, "erp.public.elsewhere")[0] == "In Progress"  # the longrunning monitor's
    assert fail_dead_local_runs(control_conn) == []  # nothing twice


def test_outcome_retry_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OUTCOME_RETRY_ENV, raising=False)
    assert outcome_retry_seconds() == 300
    monkeypatch.setenv(OUTCOME_RETRY_ENV, "12.5")
    assert outcome_retry_seconds() == 12.5
    monkeypatch.setenv(OUTCOME_RETRY_ENV, "-1")
    with pytest.raises(ValueError, match=OUTCOME_RETRY_ENV):
        outcome_retry_seconds()

    now = [0.0]
    pauses = []
    for pause in retry_pauses(100, clock=lambda: now[0]):
        pauses.append(pause)
        now[0] += pause + 0.5  # each try takes half a second
    assert pauses[:6] == [1, 2, 4, 8, 16, 30] and max(pauses) == 30
    assert 100 <= now[0] <= 100.5 and list(retry_pauses(0)) == []
