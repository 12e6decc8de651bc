"""One `dagster-daemon run` per Dagster instance: a second one stops at startup, naming the first.

Dagster supports one daemon per instance and only logs "Another SENSOR daemon is still sending
heartbeats" when there are two; both keep running every loop. Their QueuedRunCoordinator daemons
each check-then-launch the same queued runs (Dagster 1.13 `_dequeue_run` reads QUEUED, writes
STARTING, launches: nothing stops both from passing the check), so one run can be launched twice;
their sensor daemons evaluate the same sensors at once. So the
daemon process holds a session-level PostgreSQL advisory lock on the instance's storage database for
its lifetime, and a second daemon that cannot take it exits with one line. The server releases the
lock when the holder's connection ends (also on SIGKILL), so a restarted or stand-by daemon takes
over at its next start. A restart of the storage's PostgreSQL server ends the connection too: the
running daemon notices it within WATCH_S, takes the lock again once the server is back, and stops
itself if another daemon took it in between.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from control_db.urls import libpq_url, redact

# pg_try_advisory_lock key of the running daemon (see QUEUE_LOCK_ID in control_db.queries.transitions).
DAEMON_LOCK_ID = 7_240_431_019
_held: psycopg.Connection | None = None  # open for the process's lifetime: closing it releases the lock
WATCH_S = 5.0  # how often the daemon checks that its lock's connection is alive
logger = logging.getLogger(__name__)


def is_daemon_run(argv: Sequence[str]) -> bool:
    """Whether this process is `dagster-daemon run` (as started by hand, by `dagster dev`, or a service)."""
    if len(argv) < 2 or argv[1] != "run":
        return False
    program = Path(argv[0])
    return program.name == "dagster-daemon" or program.parts[-3:] == ("dagster", "_daemon", "__main__.py")


def lock_holder(conn: psycopg.Connection) -> tuple[str, str | None, object] | None:
    """(application_name, client address, backend start) of the session holding the daemon lock of
    `conn`'s database, or None when nobody holds it."""
    return conn.execute(
        "SELECT a.application_name, host(a.client_addr), a.backend_start FROM pg_locks l "
        "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
        "AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = %s AND l.database = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())",
        (DAEMON_LOCK_ID,),
    ).fetchone()


def _describe_holder(conn: psycopg.Connection) -> str:
    row = lock_holder(conn)
    if row is None:
        return "another daemon (it has just stopped: start this one again)"
    name, address, since = row
    return f"{name or 'another daemon'} from {address or 'a local socket'}, running since {since:%Y-%m-%d %H:%M:%S %Z}"


def _refusal(storage_url: str, holder: str) -> str:
    return (
        f"dagster-daemon: refused to start: {holder} already runs the daemon of this Dagster instance "
        f"({redact(libpq_url(storage_url))}). One daemon per instance is supported: a second one would "
        "launch the same queued runs twice (README, 'Scale-out'). Stop the other daemon first, or give "
        "this one its own DAGSTER_PG_URL."
    )


def _take(storage_url: str) -> psycopg.Connection | str:
    """A connection holding the daemon lock, or a description of the daemon that holds it."""
    name = f"dagster-daemon on {socket.gethostname()} pid {os.getpid()}"
    # Server-side keepalives: a holder whose host vanished without closing its connection frees the
    # lock in about a minute instead of after the kernel's two hours.
    conn = psycopg.connect(
        libpq_url(storage_url), autocommit=True, application_name=name[:63], connect_timeout=10,
        options="-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
    )  # fmt: skip
    if conn.execute("SELECT pg_try_advisory_lock(%s)", (DAEMON_LOCK_ID,)).fetchone()[0]:
        return conn
    holder = _describe_holder(conn)
    conn.close()
    return holder


def _keep(storage_url: str) -> None:
    """Check the lock's connection every WATCH_S; when it is gone (the server restarted), take the lock
    again, and stop this daemon (SIGTERM, as a service manager would) if another daemon took it first."""
    global _held
    while True:
        time.sleep(WATCH_S)
        try:
            if _held is not None:
                _held.execute("SELECT 1")
                continue
        except psycopg.Error:
            pass
        try:
            taken = _take(storage_url)
        except psycopg.Error:
            continue  # the server is still down: try again
        if isinstance(taken, str):
            logger.error(_refusal(storage_url, taken).replace("refused to start", "stopping"))
            os.kill(os.getpid(), signal.SIGTERM)
            return
        logger.warning("dagster-daemon: took the daemon lock again after its connection was lost")
        _held = taken


def claim_daemon_lock(storage_url: str) -> None:
    """Hold the instance's daemon lock for this process's lifetime; SystemExit naming the daemon that
    holds it already. Idempotent within a process (Dagster may build the instance more than once)."""
    global _held
    if _held is not None:
        return
    taken = _take(storage_url)
    if isinstance(taken, str):
        raise SystemExit(_refusal(storage_url, taken))
    _held = taken
    threading.Thread(target=_keep, args=(storage_url,), name="dataloader-daemon-lock", daemon=True).start()


def claim_if_daemon(storage_url: str, argv: Sequence[str] | None = None) -> None:
    """claim_daemon_lock() when this process is `dagster-daemon run`; nothing in any other process."""
    if is_daemon_run(sys.argv if argv is None else argv):
        claim_daemon_lock(storage_url)
