"""The faults the whole-system test injects while loads run: each finds its victim from what the system
itself says (no guessing from process names) and reports whether it found one.

- worker: SIGKILL a Pipes worker — the process of the daemon's session that holds a connection to a
  source database (only workers ever open a source).
- run: SIGKILL a run process — the pid Dagster's "Started process for run (pid: N)" event names.
- control: terminate every control-database connection of our code (`pg_terminate_backend`).
- daemon: SIGKILL the daemon with its whole session and its code server's (runs, workers), then start
  both again.
- postgres: restart the private PostgreSQL server that holds the control database, Dagster's storage
  and the sources (fast shutdown, start).
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import psutil
import psycopg
from daemon_support import Daemon
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

from control_db import embedded

FAULTS = ("worker", "run", "control", "daemon", "postgres")
_PID = re.compile(r"\(pid: (\d+)\)")


class Faults:
    """Inject one named fault; counts what was injected."""

    def __init__(
        self,
        daemon: Daemon,
        admin_url: str,
        source_db: str,
        control_db: str,
        pg_dir: Path,
        pg_port: int,
    ) -> None:
        self.daemon, self.admin_url = daemon, admin_url
        self.source_db, self.control_db, self.pg_dir, self.pg_port = source_db, control_db, pg_dir, pg_port
        self.injected: dict[str, int] = dict.fromkeys(FAULTS, 0)

    def inject(self, fault: str, patience_s: float = 600) -> bool:
        """Inject `fault` as soon as it has a victim (at most `patience_s`: on a busy host a run process
        takes minutes to start); whether it was injected."""
        action = getattr(self, f"_{fault}")
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            if action():
                self.injected[fault] += 1
                return True
            time.sleep(0.1)
        return False

    def _kill(self, pids: list[int]) -> bool:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                return True
            except ProcessLookupError:
                continue
        return False

    def _worker(self) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            ports = {
                port
                for (port,) in conn.execute(
                    "SELECT client_port FROM pg_stat_activity WHERE datname = %s AND client_port IS NOT NULL",
                    (self.source_db,),
                ).fetchall()
            }
        workers = []
        for pid in self.daemon.members():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if any(
                c.laddr and c.laddr.port in ports and c.raddr and c.raddr.port == self.pg_port
                for c in connections
            ):
                workers.append(pid)
        return self._kill(workers)

    def _run(self) -> bool:
        pids = []
        with DagsterInstance.from_config(str(self.daemon.home)) as instance:
            for run in instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED])):
                for record in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
                    if match := _PID.search(record.dagster_event.message or ""):
                        pids.append(int(match.group(1)))
        members = set(self.daemon.members())
        return self._kill([pid for pid in pids if pid in members])

    def _control(self) -> bool:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            ended = conn.execute(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND application_name LIKE 'dataloader-%%' AND pid <> pg_backend_pid()",
                (self.control_db,),
            ).fetchone()[0]
        return ended > 0

    def _daemon(self) -> bool:
        self.daemon.kill()
        self.daemon.start()
        return True

    def _postgres(self) -> bool:
        embedded.stop(self.pg_dir)
        time.sleep(1)
        embedded.ensure_running(self.pg_dir, port=self.pg_port)
        return True
