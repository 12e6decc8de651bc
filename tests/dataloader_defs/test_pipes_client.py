"""Load workers forked from the fork server (a run of several tables, the default), or started
fresh (a run of one table, or DATALOADER_WORKER_FORK=off): either way every table loads and its row
ends Succeeded."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from defs_support import add_control, materialize_by_hand, row, source_table

from dataloader_defs.defs.loader import fork_server


def _worker_pids(resources) -> Callable[[], list[int]]:
    """The running workers the run's loader holds handles of (what its interruption stops)."""
    client = resources["loader"].workers.pipes_client
    return lambda: sorted(w.pid for w in client.running_workers())


def _forked_worker_pids(resources) -> Callable[[], list[int]]:
    client = resources["loader"].workers.pipes_client
    return lambda: sorted(w.pid for w in client.running_workers() if w.forked)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _while_loading(
    control_conn,
    source,
    instance,
    resources,
    tables: int,
    workers: Callable[[], list[int]],
    look: Callable[[list[int]], None],
) -> None:
    """Materialise `tables` tables of one source in one run, their source tables locked; call `look`
    with `workers()` once every table's worker waits on its lock, release them, and check that every
    load then succeeds."""
    names = [f"forked_{i}" for i in range(tables)]
    for name in names:
        source_table(
            source, name, "id integer PRIMARY KEY", f"INSERT INTO {name} SELECT generate_series(1, 9)"
        )
        add_control(control_conn, f"k.{name}", source_table=name, primary_keys=["id"])
    locker = psycopg.connect(source)
    locker.execute(f"LOCK TABLE {', '.join(f'public.{n}' for n in names)} IN ACCESS EXCLUSIVE MODE")
    keys = [f"k.{name}" for name in names]
    results: list[object] = []
    run = threading.Thread(target=lambda: results.append(materialize_by_hand(instance, resources, *keys)))
    run.start()
    try:
        deadline = time.monotonic() + 60
        while {row(control_conn, k).last_status for k in keys} != {"In Progress"} or len(workers()) < tables:
            assert time.monotonic() < deadline, "the loads never started"
            time.sleep(0.2)
        look(workers())
    finally:
        locker.close()
        run.join(120)
    assert results and results[0].success
    for key in keys:
        loaded = row(control_conn, key)
        assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 9


def test_the_workers_of_a_run_of_several_tables_are_forked_from_the_fork_server(
    control_conn, source, instance, resources
) -> None:
    def look(workers: list[int]) -> None:
        servers = {_parent(worker) for worker in workers}
        (server,) = servers  # not this process: the one server that imported the worker
        assert "forkserver" in _cmdline(server)
        assert _worker_pids(resources)() == workers  # what a run's interruption stops: not the server

    _while_loading(control_conn, source, instance, resources, 2, _forked_worker_pids(resources), look)
    assert _forked_worker_pids(resources)() == []


@pytest.mark.parametrize(("fork", "tables"), [("on", 1), ("off", 2)])
def test_a_run_of_one_table_or_without_forking_starts_fresh_workers(
    control_conn, source, instance, resources, monkeypatch: pytest.MonkeyPatch, fork: str, tables: int
) -> None:
    monkeypatch.setenv(fork_server.FORK_ENV, fork)

    def look(workers: list[int]) -> None:
        assert _forked_worker_pids(resources)() == []
        assert all("pipes_workers.dataloader_pipe" in _cmdline(worker) for worker in workers)
        assert {_parent(worker) for worker in workers} == {os.getpid()}

    _while_loading(control_conn, source, instance, resources, tables, _worker_pids(resources), look)


def test_forked_processes_started_and_awaited_from_many_threads_each_get_their_exit_code() -> None:
    """As a run's tables do: every process reports its own exit code, never the 255 multiprocessing
    gives a status that another thread's start() consumed."""
    assert fork_server.unavailable() is None
    server = fork_server.server()

    def one(i: int) -> int | None:
        process = server.Process(target=os._exit, args=(i % 3,))  # type: ignore[attr-defined]
        fork_server.start(process)
        return fork_server.wait(process)

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(one, range(150)))

    assert codes == [i % 3 for i in range(150)]


def _load_in_daemon(control_url: str, lake_root: str, keys: list[str], results) -> None:
    """A run of `keys` in this (daemonic) process, as a Celery prefork child runs one; puts its
    success and the messages that said why workers were not forked."""
    from dagster import DagsterInstance
    from defs_support import materialize_by_hand

    from dataloader_defs.defs.loader import LocalWorkers, TableLoader
    from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings

    control_db, settings = ControlDatabase(url=control_url), DataloaderSettings(lake_root=lake_root)
    loader = TableLoader(control_db=control_db, settings=settings, workers=LocalWorkers())
    with DagsterInstance.ephemeral() as instance:
        result = materialize_by_hand(
            instance, {"control_db": control_db, "loader": loader}, *keys, raise_on_error=False
        )
        told = [
            r.user_message for r in instance.all_logs(result.run_id) if "fresh processes" in r.user_message
        ]
    results.put((result.success, told))


def _children(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").glob("[0-9]*") if _safe_parent(int(p.name)) == pid]


def _safe_parent(pid: int) -> int | None:
    try:
        return _parent(pid)
    except (OSError, IndexError):
        return None


def test_a_run_in_a_daemonic_process_loads_with_fresh_workers_never_an_assertion(
    control_conn, source, control_db_url, lake_root
) -> None:
    """Under Celery's prefork pool a run executes in a daemonic process, where multiprocessing
    refuses to start children: the run of several tables starts fresh workers and says why, once."""
    names = ["daemon_a", "daemon_b"]
    for name in names:
        source_table(
            source, name, "id integer PRIMARY KEY", f"INSERT INTO {name} SELECT generate_series(1, 9)"
        )
        add_control(control_conn, f"k.{name}", source_table=name, primary_keys=["id"])
    keys = [f"k.{name}" for name in names]
    locker = psycopg.connect(source)
    locker.execute(f"LOCK TABLE {', '.join(f'public.{n}' for n in names)} IN ACCESS EXCLUSIVE MODE")
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    run = spawn.Process(
        target=_load_in_daemon, args=(control_db_url, str(lake_root), keys, results), daemon=True
    )
    run.start()
    try:
        deadline = time.monotonic() + 90
        while True:
            children = {pid: _cmdline(pid) for pid in _children(run.pid)}
            workers = [pid for pid, cmd in children.items() if "pipes_workers.dataloader_pipe" in cmd]
            if len(workers) == 2:
                break
            assert time.monotonic() < deadline, f"the workers never started: {children}"
            time.sleep(0.2)
        assert not any("forkserver" in cmd for cmd in children.values())  # fresh, not forked
    finally:
        locker.close()
    success, told = results.get(timeout=120)
    run.join(30)
    assert success
    assert len(told) == 1 and "daemonic process" in told[0]
    for key in keys:
        loaded = row(control_conn, key)
        assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 9
