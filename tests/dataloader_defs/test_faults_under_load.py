"""Whole-system fault injection on a busy machine (issue 19): nothing lost, nothing twice, nothing stuck.

A real `dagster-daemon run` (this repo's dagster.yaml, PostgreSQL storage) loads tables from a source
while a CPU burner keeps the load average at 10 or more. Everything lives on a PRIVATE PostgreSQL
server this test starts (control database, Dagster storage, source), so it may restart it. Each round
makes every row due again with new source rows, and while the loads run injects, in turn: SIGKILL of a
Pipes worker, SIGKILL of a run process, termination of the control-database connections, SIGKILL of the
daemon with its whole session (then started again), and a restart of the PostgreSQL server
(fault_injection.py). After each round every row must be Succeeded with its Delta table equal to its
source (0 lost, 0 duplicated keys, 0 stuck), none left Failed or in manual review.

Opt-in (DATALOADER_TEST_UNDER_LOAD=1); DATALOADER_TEST_FAULT_ROUNDS sets the rounds (default 1).
README, "Reliability under load".
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from cpu_burner import CpuBurner
from daemon_support import (
    Daemon,
    daemon_env,
    delta_differs,
    free_port,
    make_database,
    outcome_counts,
    seed_tables,
    under_load,
    wait_all_succeeded,
)
from fault_injection import FAULTS, Faults

from control_db import embedded
from control_db.migrate import upgrade

ROUNDS = int(os.environ.get("DATALOADER_TEST_FAULT_ROUNDS") or 1)
TABLES, ROWS, NEW_ROWS = 8, 20_000, 2_000
MIN_LOAD = 10.0
BURNERS = int(os.environ.get("DATALOADER_TEST_BURNERS") or 20)
ROUND_DEADLINE_S = (
    1800  # a bound, not a duration: a killed worker's retry waits for a new run process, minutes here
)
PATIENCE_S = 600  # how long a fault waits for its victim (a run process starts in minutes here)


def _free_port() -> int:
    """A free port for the private server: DATALOADER_TEST_PRIVATE_PG_PORT, else the first free of 7430-7499."""
    if os.environ.get("DATALOADER_TEST_PRIVATE_PG_PORT"):
        return int(os.environ["DATALOADER_TEST_PRIVATE_PG_PORT"])
    return free_port(range(7430, 7500))


def _next_round(control_url: str, source_url: str, tables, round_no: int) -> None:
    """New source rows in every table, every row due now."""
    with psycopg.connect(source_url, autocommit=True) as source:
        for table in tables:
            first = ROWS + (round_no - 1) * NEW_ROWS + 1
            source.execute(
                f"INSERT INTO {table.source_table} (id, v) SELECT g, md5(g::text) FROM generate_series(%s, %s) g",
                (first, first + NEW_ROWS - 1),
            )
    with psycopg.connect(control_url, autocommit=True) as control:
        control.execute("UPDATE dataloader.table_control SET next_load_date_time = now()")


@under_load
@pytest.mark.timeout(300 + ROUNDS * (ROUND_DEADLINE_S + 60 + 2 * PATIENCE_S))
def test_faults_under_load_lose_nothing_duplicate_nothing_and_leave_nothing_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_dir = Path(tempfile.mkdtemp(prefix="dataloader-private-pg-"))
    port = _free_port()
    daemon: Daemon | None = None
    left: list[int] = []
    figures: list[str] = []
    try:
        admin = embedded.ensure_running(pg_dir, port=port)
        control_url, dagster_url = make_database(admin, "control"), make_database(admin, "dagster")
        source_url = make_database(admin, "source")
        upgrade(control_url)
        lake = str(tmp_path / "lake")
        env = daemon_env(
            control_url,
            dagster_url,
            lake,
            DATALOADER_RUN_BATCH="2",
            DATALOADER_LONGRUNNING_INTERVAL_S="5",
            DATALOADER_LONGRUNNING_THRESHOLD_S="60",
            DATALOADER_OUTCOME_RETRY_S="120",
        )
        daemon = Daemon(
            tmp_path / "home",
            env,
            module="dataloader_defs.definitions",
            start_timeout_s=180,  # dagster.yaml's: a run process on a busy host takes minutes to start
            own_code_server=True,
        )
        monkeypatch.setenv("DAGSTER_PG_URL", env["DAGSTER_PG_URL"])  # this process reads runs too
        with psycopg.connect(control_url, autocommit=True) as control:
            tables = seed_tables(control, source_url, "src", TABLES, ROWS)
        daemon.refresh_state()
        with CpuBurner(BURNERS, seconds=ROUNDS * (ROUND_DEADLINE_S + 60) + 200) as burner:
            load = burner.wait_for_load(MIN_LOAD, timeout_s=150)
            assert load >= MIN_LOAD, f"the burner raised the load average to {load:.1f} only"
            first_sample = burner.samples_taken
            faults = Faults(daemon, admin, "source", "control", pg_dir, port)
            daemon.start()
            for round_no in range(1, ROUNDS + 1):
                if round_no > 1:
                    _next_round(control_url, source_url, tables, round_no)
                started = time.monotonic()
                for fault in FAULTS:
                    faults.inject(fault, patience_s=PATIENCE_S)
                late = _wait_round(control_url, daemon)
                low, high = burner.load_average(first_sample)
                with psycopg.connect(control_url, autocommit=True) as control:
                    counts = outcome_counts(control)
                    review = control.execute(
                        "SELECT control_key FROM dataloader.table_control WHERE manual_review"
                    ).fetchall()
                figures.append(
                    f"round {round_no}: {time.monotonic() - started:.0f}s, faults {faults.injected}, "
                    f"load average {low:.1f}-{high:.1f}, history {counts}"
                )
                print(figures[-1])
                assert not late, f"round {round_no}: not Succeeded (stuck): {late}\n{daemon.log_tail()}"
                problems = [p for t in tables if (p := delta_differs(lake, source_url, t))]
                assert not problems, "\n".join(problems)
                assert review == []
            assert low >= MIN_LOAD, f"load average fell to {low:.1f}"
            assert all(faults.injected[f] >= 1 for f in FAULTS), f"faults not injected: {faults.injected}"
        left = daemon.stop()
    finally:
        if daemon is not None:
            left = left or daemon.stop()
        embedded.stop(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)
    print("\n".join(figures))
    assert left == [], f"processes of the daemon survived SIGKILL: {left}"


def _wait_round(control_url: str, daemon: Daemon) -> list[tuple]:
    """Wait for every row to be Succeeded; restart the daemon if it ended (as its supervisor would) and
    reconnect after the server restart."""

    def supervise() -> None:
        if daemon.process is not None and daemon.process.poll() is not None:
            daemon.start()

    return wait_all_succeeded(control_url, deadline_s=ROUND_DEADLINE_S, tick=supervise)
