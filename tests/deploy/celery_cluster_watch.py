"""What the Celery cluster test does and notes while the batch runs: it kills one host, follows the
slow load until the long-running monitor stops it, and afterwards checks that it really stopped."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
from celery_cluster_support import SOURCE_TAG, alive, child_pids, hosts_script, start_time, task_worker
from dagster import DagsterInstance, DagsterRunStatus

from scripts.process_sessions import command_line, session_members

SLOW_KEY = "slow.slow_view"
SLOW_SOURCE = "slow"
ATTEMPT_TAG = "dataloader/attempt."  # a load run carries one per table: dataloader/attempt.<history id> = key


def in_flight(instance: DagsterInstance) -> dict[str, tuple[str, str, str | None, str, int | None]]:
    """run id -> (source tag, run status, host, Celery task state, pool pid) of every unfinished run."""
    found = {}
    for run in instance.get_runs():
        if not run.is_finished:
            host, state, pid = task_worker(instance, run)
            found[run.run_id] = (run.tags.get(SOURCE_TAG, ""), run.status.value, host, state, pid)
    return found


class Watch:
    """The killed host and its runs and tables; the slow load's run, Pipes workers and queries."""

    def __init__(
        self, instance: DagsterInstance, control: psycopg.Connection, root: Path, slow_source_url: str
    ):
        self.instance, self.control, self.root, self.slow_source_url = (
            instance,
            control,
            root,
            slow_source_url,
        )
        self.victim: str | None = None
        self.victim_runs: list[str] = []
        self.victim_tables: dict[int, str] = {}  # the killed runs' attempts: history id -> control key
        self.victim_left: list[int] = []
        self.slow_run: str | None = None
        self.slow_host: str | None = None
        self.slow_workers: dict[int, str] = {}  # Pipes worker pid -> its start time (/proc stat)
        self.slow_backends: set[int] = set()
        self.slow_failed = False

    def maybe_kill(self) -> None:
        """SIGKILL one host that is loading tables of distinct sources, none the slow one. (With the
        stock launcher a killed run keeps its source's run slot: two of one source would block it.)"""
        flight = in_flight(self.instance)
        by_host: dict[str, list[str]] = {}
        for run_id, (_, _, host, state, _) in flight.items():
            if host and state == "STARTED":
                by_host.setdefault(host, []).append(run_id)
        for host, run_ids in sorted(by_host.items()):
            sources = [flight[r][0] for r in run_ids]
            if SLOW_SOURCE in sources or len(set(sources)) != len(sources):
                continue
            if any(flight[r][1] != DagsterRunStatus.STARTED.value for r in run_ids):
                continue  # a task started but its run not yet: wait until the run is STARTED
            loading = self.control.execute(
                "SELECT 1 FROM dataloader.table_control WHERE last_status = 'In Progress' AND last_run_id = ANY(%s)",
                (run_ids,),
            ).fetchall()
            if not loading:
                continue
            hosts_script("kill", host, "--root", str(self.root))
            self.victim, self.victim_runs = host, run_ids
            time.sleep(1)
            self.victim_tables = {
                key
                for (key,) in self.control.execute(
                    # The attempts the kill cut off: a table whose load had ended (recorded) just
                    # before the SIGKILL is loaded, not cut off, and needs no recovery.
                    "SELECT control_key FROM dataloader.historical_metadata "
                    "WHERE run_id = ANY(%s) AND load_end_time IS NULL",
                    (run_ids,),
                ).fetchall()
            }
            session = json.loads((self.root / "cluster.json").read_text())["processes"][host]["session"]
            self.victim_left = session_members(session)
            return

    def follow_slow(self) -> None:
        """Note the slow load's Pipes workers and source queries while it is In Progress; once the
        long-running monitor failed its row, make the view fast so that the retry loads it."""
        status, code, run_id = self.control.execute(
            "SELECT last_status, last_error_code, last_run_id FROM dataloader.table_control WHERE control_key = %s",
            (SLOW_KEY,),
        ).fetchone()
        if self.slow_failed:
            return
        if status == "In Progress":
            run = self.instance.get_run_by_id(run_id)
            host, _, pool_pid = task_worker(self.instance, run) if run else (None, "", None)
            self.slow_run, self.slow_host = run_id, host
            for pid in child_pids(pool_pid) if pool_pid else []:
                if "pipes_workers" in command_line(pid) and (started := start_time(pid)):
                    self.slow_workers[pid] = started
            with psycopg.connect(self.slow_source_url, autocommit=True) as source:
                self.slow_backends |= {
                    pid
                    for (pid,) in source.execute(
                        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query ILIKE '%%slow_view%%'"
                    ).fetchall()
                }
        elif status == "Failed" and code == "running_too_long":
            self.slow_failed = True
            with psycopg.connect(self.slow_source_url, autocommit=True) as source:
                source.execute("UPDATE slow_setting SET seconds = 0")

    def slow_still_running(self, wait_s: float = 30) -> list[str]:
        """What still runs of the terminated slow load, given `wait_s` to stop (empty: all gone)."""
        deadline = time.monotonic() + wait_s
        while True:
            run = self.instance.get_run_by_id(self.slow_run) if self.slow_run else None
            workers = [pid for pid, started in self.slow_workers.items() if alive(pid, started)]
            with psycopg.connect(self.slow_source_url, autocommit=True) as source:
                backends = source.execute(
                    "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)", (list(self.slow_backends),)
                ).fetchall()
            left = []
            if run is None or not run.is_finished:
                left.append(f"terminated run {self.slow_run} is {run.status.value if run else 'unknown'}")
            if workers:
                left.append(f"its Pipes worker(s) {workers} still run on {self.slow_host}")
            if backends:
                left.append(f"its source queries (backends {[b for (b,) in backends]}) still run")
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(1)
