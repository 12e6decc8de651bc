"""Two `dagster-daemon run` processes on one Dagster instance (issue 19: "with two daemons 6 rows ended
Failed and 2 Queued"). Dagster itself only logs "Another … daemon is still sending heartbeats" and
lets both dequeue the same queued run, so the second daemon must not run: it stops at startup naming
the first (dataloader_defs.daemon_lock), the first loads every table exactly once, and once the
first is gone the second starts normally (a restart or a stand-by taking over)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from daemon_support import (
    Daemon,
    daemon_env,
    delta_differs,
    ever_failed,
    free_port,
    make_database,
    seed_tables,
    wait_all_succeeded,
)

from control_db import embedded
from dataloader_defs.daemon_lock import is_daemon_run, lock_holder

DEADLINE_S = 180  # a bound, not a duration: on a quiet machine the load takes about half a minute


def holder_pid(dagster_url: str) -> int | None:
    """The pid (from its application_name) of the daemon holding the instance's daemon lock."""
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        row = lock_holder(conn)
    match = re.search(r"pid (\d+)$", row[0]) if row else None
    return int(match.group(1)) if match else None


def wait_until(what: str, daemon: Daemon, done, timeout_s: float = 120) -> None:
    """Poll `done()` while the daemon runs; fail naming `what` when it exits or `timeout_s` passes."""
    assert daemon.process is not None
    started = time.monotonic()
    while not done():
        assert daemon.process.poll() is None, f"the daemon exited before {what}:\n{daemon.log_tail()}"
        assert time.monotonic() - started < timeout_s, f"no {what} after {timeout_s}s\n{daemon.log_tail()}"
        time.sleep(0.5)


def sensor_heartbeats(dagster_url: str) -> int:
    """How many sensor daemons have written Dagster's heartbeat (0 before the first one's storage exists)."""
    with psycopg.connect(dagster_url, autocommit=True) as conn:
        try:
            return conn.execute(
                "SELECT count(*) FROM daemon_heartbeats WHERE daemon_type = 'SENSOR'"
            ).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0


@pytest.mark.timeout(DEADLINE_S + 180)
def test_a_second_daemon_is_refused_and_every_table_loads_once(
    new_database, control_db_url: str, control_conn: psycopg.Connection, source_pg_url: str, tmp_path: Path
) -> None:
    tables = seed_tables(control_conn, source_pg_url, "twod", count=3, rows=50)
    dagster_db = new_database("dl_two_daemons")
    # One run for the three tables: each run process costs a busy 2-core machine a minute to start.
    env = daemon_env(control_db_url, dagster_db, str(tmp_path / "lake"), DATALOADER_RUN_BATCH="3")
    first = Daemon(tmp_path / "first", env, module="dataloader_defs.definitions", start_timeout_s=180)
    second = Daemon(tmp_path / "second", env, module="dataloader_defs.definitions", start_timeout_s=180)
    try:
        first.refresh_state()
        first.start()
        wait_until("sensor daemon heartbeat", first, lambda: sensor_heartbeats(dagster_db) > 0)
        second.start()
        assert second.process is not None
        try:
            code = second.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"a second daemon runs beside the first on one instance:\n{second.log_tail(10)}")
        assert code != 0 and holder_pid(dagster_db) == first.process.pid
        refusal = second.log_tail()
        assert "refused to start" in refusal and f"pid {first.process.pid}" in refusal, refusal
        assert "One daemon per instance is supported" in refusal

        late = wait_all_succeeded(control_conn, deadline_s=DEADLINE_S)
        assert not late, f"not Succeeded: {late}\n{first.log_tail()}"
        assert ever_failed(control_conn) == []
        attempts = control_conn.execute(
            "SELECT control_key, load_status, count(*) FROM dataloader.historical_metadata GROUP BY 1, 2 ORDER BY 1"
        ).fetchall()
        assert attempts == [
            (t.control_key, "Succeeded", 1) for t in sorted(tables, key=lambda t: t.control_key)
        ]
        problems = [p for t in tables if (p := delta_differs(str(tmp_path / "lake"), source_pg_url, t))]
        assert not problems, "\n".join(problems)

        first.kill()  # the lock goes with its connection: the second daemon now starts
        second.start()
        wait_until(
            "daemon lock of the second daemon", second, lambda: holder_pid(dagster_db) == second.process.pid
        )
    finally:
        left = first.stop() + second.stop()
    assert left == [], f"processes of the daemons survived SIGKILL: {left}"


@pytest.mark.timeout(300)
def test_the_daemon_takes_its_lock_again_after_a_postgresql_restart(
    control_db_url: str, control_conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Dagster's storage on a private server restarted under a running daemon: the daemon holds the
    lock again once the server is back, so a second daemon started afterwards is still refused."""
    # Outside pytest's tmp_path: the server's service user must reach it (pytest's folders are 0700).
    pg_dir, port = Path(tempfile.mkdtemp(prefix="dataloader-two-daemons-pg-")), free_port(range(7800, 7900))
    admin = embedded.ensure_running(pg_dir, port=port)
    daemons: list[Daemon] = []
    try:
        dagster_db = make_database(admin, "dagster")
        env = daemon_env(control_db_url, dagster_db, str(tmp_path / "lake"))
        first, second = (
            Daemon(tmp_path / name, env, module="dataloader_defs.definitions", start_timeout_s=180)
            for name in ("first", "second")
        )
        daemons += [first, second]
        first.refresh_state()
        first.start()
        wait_until("daemon lock", first, lambda: holder_pid(dagster_db) == first.process.pid)
        with psycopg.connect(admin) as conn:
            before = conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0]
        embedded.stop(pg_dir)
        time.sleep(1)
        embedded.ensure_running(pg_dir, port=port)
        with psycopg.connect(admin) as conn:
            assert conn.execute("SELECT pg_postmaster_start_time()").fetchone()[0] > before  # restarted
        wait_until(
            "daemon lock after the restart", first, lambda: holder_pid(dagster_db) == first.process.pid
        )
        second.start()
        assert second.process.wait(timeout=120) != 0
        assert f"pid {first.process.pid}" in second.log_tail(), second.log_tail()
    finally:
        left = [pid for daemon in daemons for pid in daemon.stop()]
        embedded.stop(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)
    assert left == [], f"processes of the daemons survived SIGKILL: {left}"


@pytest.mark.parametrize(
    ("argv", "daemon"),
    [
        (["/venv/bin/dagster-daemon", "run", "-w", "workspace.yaml"], True),
        (["/venv/lib/site-packages/dagster/_daemon/__main__.py", "run"], True),  # what `dagster dev` starts
        (["/venv/bin/dagster-daemon", "liveness-check"], False),
        (["/venv/bin/dagster", "dev"], False),
        (["/venv/bin/dagster", "api", "grpc"], False),  # a code server, a run process
    ],
)
def test_only_the_daemon_process_takes_the_lock(argv: list[str], daemon: bool) -> None:
    assert is_daemon_run(argv) is daemon
