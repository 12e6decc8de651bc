"""`dataloader load`'s run ids, and rows such a run left In Progress after its process ended.

A `dataloader load` attempt has no Dagster run behind it; its run id names the process instead:
`local-<host>-<pid>-<start>-<nonce>`, where `<start>` is the process's start time in clock ticks
since boot (`/proc/<pid>/stat`; 0 where there is no /proc) and `<nonce>` tells apart two loads of
one process. On the host that ran it, a row In Progress for such a run whose process is gone — no
such pid, or a pid that belongs to a process started at another time — is failed like a row whose
Dagster run is gone (transient, `run_lost`). A run of another host is left to the longrunning
monitor: its pid means nothing here.

Called by `dataloader load` and `dataloader reset` for their row, and by the reconcile pass for all.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from dataclasses import dataclass

import psycopg

from control_db.queries.reads import get_control_row, in_progress_rows
from control_db.queries.transitions import mark_failed

LOCAL_RUN_PREFIX = "local-"
_LOCAL_RUN = re.compile(r"^local-(?P<host>.+)-(?P<pid>\d+)-(?P<start>\d+)-(?P<nonce>[0-9a-f]{8})$")


@dataclass(frozen=True)
class LocalRun:
    """The process a `local-…` run id names."""

    host: str
    pid: int
    start: int  # clock ticks since boot; 0 when unknown

    @property
    def on_this_host(self) -> bool:
        """Whether the run id was made on the host this process runs on."""
        return self.host == socket.gethostname()

    def is_gone(self) -> bool:
        """Whether the process ended (on this host only: call `on_this_host` first). A pid that is
        alive but started at another time than recorded is another process: the run's is gone."""
        start = process_start(self.pid)
        if start is None:
            return True
        return bool(self.start and start and start != self.start)


def process_start(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), 0 when it exists but /proc cannot say,
    None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # Field 22 (starttime); field 2 (the command name) may hold spaces, so count after its ')'.
            return int(stat.read().rsplit(b")", 1)[1].split()[19])
    except FileNotFoundError:
        return None
    except OSError:  # no /proc on this system: ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0


def new_local_run_id() -> str:
    """`local-<host>-<pid>-<start>-<nonce>` for a load this process runs now."""
    start = process_start(os.getpid()) or 0
    return f"{LOCAL_RUN_PREFIX}{socket.gethostname()}-{os.getpid()}-{start}-{uuid.uuid4().hex[:8]}"


def parse_local_run(run_id: str | None) -> LocalRun | None:
    """The process a `local-…` run id names; None for other run ids and for ids without a process
    start (made before run ids carried it: their process cannot be told from a later one)."""
    match = _LOCAL_RUN.match(run_id or "")
    if match is None:
        return None
    return LocalRun(match["host"], int(match["pid"]), int(match["start"]))


_OPEN_ATTEMPT = (
    "SELECT max(id) FROM dataloader.historical_metadata "
    "WHERE control_key = %s AND run_id = %s AND load_status = 'In Progress' AND load_end_time IS NULL"
)


def fail_dead_local_runs(conn: psycopg.Connection, control_key: str | None = None) -> list[str]:
    """Fail rows In Progress for a `dataloader load` of this host whose process is gone (transient,
    `run_lost`), all of them or only `control_key`'s; returns the control keys failed.

    The transition is guarded by that run's open attempt: a row another run has taken meanwhile
    is left alone. If the gone process had committed to Delta, the next load finds its commit and
    records that attempt Succeeded (`mark_committed_attempt`).
    """
    if control_key is None:
        rows = in_progress_rows(conn)
    else:
        row = get_control_row(conn, control_key)
        rows = [row] if row is not None and row.last_status == "In Progress" else []
    failed = []
    for row in rows:
        run = parse_local_run(row.last_run_id)
        if run is None or not run.on_this_host or not run.is_gone():
            continue
        attempt = conn.execute(_OPEN_ATTEMPT, (row.control_key, row.last_run_id)).fetchone()
        if attempt is None or attempt[0] is None:
            continue
        message = (
            f"run {row.last_run_id} (process {run.pid} on {run.host}) ended but the row was still In Progress"
        )
        if mark_failed(
            conn, row.control_key, message=message, kind="transient", code="run_lost", history_id=attempt[0]
        ):
            failed.append(row.control_key)
    return failed
