"""Load workers forked from the fork server (the default), or started fresh with
DATALOADER_WORKER_FORK=off: either way the table loads and the row ends Succeeded."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from defs_support import add_control, materialize_by_hand, row, source_table

from dataloader_defs.defs import pipes_client
from dataloader_defs.defs.assets import _worker_pids
from dataloader_defs.defs.pipes_client import forked_worker_pids


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _while_loading(
    control_conn, source, instance, resources, workers: Callable[[], list[int]], look: Callable[[], None]
) -> None:
    """Materialise a table whose source is locked, call `look` once `workers()` shows its worker
    waiting on the lock, release it, and check that the load then succeeds."""
    source_table(
        source, "forked", "id integer PRIMARY KEY", "INSERT INTO forked SELECT generate_series(1, 9)"
    )
    add_control(control_conn, "k.forked", source_table="forked", primary_keys=["id"])
    locker = psycopg.connect(source)
    locker.execute("LOCK TABLE public.forked IN ACCESS EXCLUSIVE MODE")
    results: list[object] = []
    run = threading.Thread(
        target=lambda: results.append(materialize_by_hand(instance, resources, "k.forked"))
    )
    run.start()
    try:
        deadline = time.monotonic() + 60
        while row(control_conn, "k.forked").last_status != "In Progress" or not workers():
            assert time.monotonic() < deadline, "the load never started"
            time.sleep(0.2)
        look()
    finally:
        locker.close()
        run.join(120)
    assert results and results[0].success
    loaded = row(control_conn, "k.forked")
    assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 9


def test_load_workers_are_forked_from_the_fork_server(control_conn, source, instance, resources) -> None:
    def look() -> None:
        (worker,) = forked_worker_pids()
        server = _parent(worker)
        assert "forkserver" in _cmdline(server)  # not this process: the server that imported the worker
        assert _worker_pids() == [worker]  # what a run's interruption stops: the worker, not the server

    _while_loading(control_conn, source, instance, resources, forked_worker_pids, look)
    assert forked_worker_pids() == []


def test_without_forking_the_worker_is_a_fresh_process(
    control_conn, source, instance, resources, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(pipes_client.FORK_ENV, "off")
    pipes_client._fork_server.cache_clear()
    try:

        def look() -> None:
            (worker,) = _worker_pids()
            assert forked_worker_pids() == [] and "pipes_workers.dataloader_pipe" in _cmdline(worker)

        _while_loading(control_conn, source, instance, resources, _worker_pids, look)
    finally:
        monkeypatch.delenv(pipes_client.FORK_ENV)
        pipes_client._fork_server.cache_clear()


def test_forked_processes_started_and_awaited_from_many_threads_each_get_their_exit_code() -> None:
    """As a run's tables do: every process reports its own exit code, never the 255 multiprocessing
    gives a status that another thread's start() consumed."""
    server = pipes_client._fork_server()
    assert server is not None

    def one(i: int) -> int | None:
        process = server.Process(target=os._exit, args=(i % 3,))  # type: ignore[attr-defined]
        pipes_client.start(process)
        return pipes_client.wait(process)

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(one, range(150)))

    assert codes == [i % 3 for i in range(150)]
