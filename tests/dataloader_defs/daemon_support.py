"""A real `dagster-daemon run` over this repo's dagster.yaml (PostgreSQL storage, QueuedRunCoordinator)
for tests that drive the whole system: source tables with control rows, the daemon's process session
(started, SIGKILLed, restarted, always stopped), and what the control table and Delta say at the end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from delta_compare import delta_vs_source

from control_db.urls import sqlalchemy_url
from scripts.process_sessions import command_line, session_members, stop_sessions

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAR_CRON = "0 0 1 1 *"  # loaded once: not due again during a test


@dataclass(frozen=True)
class Table:
    control_key: str
    source_table: str
    destination: str


OPT_IN = "DATALOADER_TEST_UNDER_LOAD"
under_load = pytest.mark.skipif(
    not os.environ.get(OPT_IN),
    reason=f"a whole-system test under a CPU burner (minutes): set {OPT_IN}=1 to run it (README, "
    "'Reliability under load')",
)


def seed_tables(
    control: psycopg.Connection, source_url: str, source_key: str, count: int, rows: int
) -> list[Table]:
    """`count` source tables of `rows` rows (id, v, updated_at) under dbconfig `source_key`, one control row
    each, strategies alternating full / incremental / append_only."""
    parts = urlsplit(source_url)
    config = {"host": parts.hostname, "port": parts.port or 5432, "database": parts.path.lstrip("/"),
              "user": parts.username or "postgres"}  # fmt: skip
    control.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES (%s, 'postgresql', %s::jsonb, 'literal')",
        (source_key, json.dumps(config)),
    )
    tables = []
    with psycopg.connect(source_url, autocommit=True) as source:
        for t in range(count):
            name = f"{source_key}_t{t:02}"
            source.execute(f"DROP TABLE IF EXISTS {name}")
            source.execute(
                f"CREATE TABLE {name} (id integer PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now())"
            )
            source.execute(
                f"INSERT INTO {name} (id, v) SELECT g, md5(g::text) FROM generate_series(1, %s) g", (rows,)
            )
            strategy = ("full", "incremental", "append_only")[t % 3]
            column = {"incremental": "updated_at", "append_only": "id"}.get(strategy)
            key, destination = f"{source_key}.{name}", f"bronze/{source_key}/{name}"
            control.execute(
                "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, source_table, "
                "destination_table, load_strategy, cron, primary_keys, incremental_column) "
                "VALUES (%s, %s, 'public', %s, %s, %s, %s, ARRAY['id'], %s)",
                (key, source_key, name, destination, strategy, FAR_CRON, column),
            )
            tables.append(Table(key, name, destination))
    return tables


def delta_differs(lake_root: str, source_url: str, table: Table) -> str | None:
    """How the table's Delta rows differ from its source's (lost or duplicated keys); None when equal."""
    return delta_vs_source(lake_root, table.destination, source_url, table.source_table, table.control_key)


def instance_yaml(start_timeout_s: int, poll_s: int = 2) -> str:
    """The repo's dagster.yaml with run monitoring on a test's time scale."""
    text = (ROOT / "dagster.yaml").read_text()
    faster = text.replace("start_timeout_seconds: 180", f"start_timeout_seconds: {start_timeout_s}")
    faster = faster.replace("poll_interval_seconds: 30", f"poll_interval_seconds: {poll_s}")
    faster = faster.replace("user_code_failure_retry_delay: 20", "user_code_failure_retry_delay: 2")
    assert faster.count(f"seconds: {start_timeout_s}\n") >= 1 and f"seconds: {poll_s}\n" in faster
    return faster


class Daemon:
    """`dagster-daemon run` in its own process session, with its DAGSTER_HOME and workspace under `home`.

    With `own_code_server` the code location is served by its own `dagster code-server start` process
    (its own session), as a production deployment serves it; otherwise the daemon starts one itself,
    which shuts down when it misses the daemon's heartbeat for 20 s (fixed in Dagster) — a machine
    under a CPU burner does.
    """

    def __init__(
        self,
        home: Path,
        env: dict[str, str],
        *,
        module: str,
        start_timeout_s: int,
        own_code_server: bool = False,
    ) -> None:
        self.home = home
        self.module = module
        self.own_code_server = own_code_server
        self.env = {
            **os.environ,
            **env,
            "DAGSTER_HOME": str(home),
            # The code server's API-server child dies without its proxy's heartbeat (30 s by default).
            "DAGSTER_GRPC_PROXY_HEARTBEAT_TTL_SECONDS": "600",
        }
        home.mkdir(parents=True, exist_ok=True)
        (home / "dagster.yaml").write_text(instance_yaml(start_timeout_s))
        (home / "workspace.yaml").write_text(
            "load_from:\n  - python_module:\n"
            f"      module_name: {module}\n      location_name: dataloader_defs\n"
            f"      working_directory: {HERE}\n"
        )
        self.sessions: list[int] = []
        self.process: subprocess.Popen | None = None
        self.code_server: subprocess.Popen | None = None
        self.starts = 0

    def refresh_state(self) -> None:
        """Write the control-table state the code location builds its assets from."""
        subprocess.run(
            [sys.executable, "-m", "dataloader_defs.state", "refresh"], env=self.env, check=True, cwd=ROOT
        )

    def start_code_server(self, timeout_s: float = 600) -> None:
        """Start the code server (unless it runs), point the workspace at it, wait until it answers."""
        if self.code_server is not None and self.code_server.poll() is None:
            return
        port = free_port(range(7500, 7600))
        (self.home / "workspace.yaml").write_text(
            "load_from:\n  - grpc_server:\n"
            f"      host: 127.0.0.1\n      port: {port}\n      location_name: dataloader_defs\n"
        )
        command = [
            "code-server",
            "start",
            "-m",
            self.module,
            "-d",
            str(HERE),
            "--location-name",
            "dataloader_defs",
        ]
        log = open(self.home / "code-server.log", "ab")  # noqa: SIM115 (the server writes it)
        self.code_server = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), *command, "-h", "127.0.0.1", "-p", str(port)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.sessions.append(self.code_server.pid)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.code_server.poll() is None, (self.home / "code-server.log").read_text()[-3000:]
            with socket.socket() as probe:
                probe.settimeout(1)
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(1)
        raise AssertionError(f"the code server did not answer within {timeout_s:.0f} s")

    def start(self) -> None:
        if self.own_code_server:
            self.start_code_server()
        self.starts += 1
        log = open(self.home / f"daemon-{self.starts}.log", "wb")  # noqa: SIM115 (the daemon writes it)
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-daemon"),
                "run",
                "-w",
                str(self.home / "workspace.yaml"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.sessions.append(self.process.pid)

    def members(self) -> list[int]:
        """Every live process of the daemon's sessions (the daemon, its code server, runs, Pipes workers)."""
        return [pid for session in self.sessions for pid in session_members(session)]

    def processes_running(self, needle: str) -> list[int]:
        """The daemon-session processes whose command line contains `needle`."""
        return [pid for pid in self.members() if needle in command_line(pid)]

    def kill(self) -> None:
        """SIGKILL the daemon and everything of its session, and its own code server with its runs and
        workers (a host losing the orchestrator at once); `start` starts both again."""
        assert self.process is not None
        own = [self.code_server] if self.code_server is not None else []
        stop_sessions([process.pid for process in (self.process, *own)], grace_s=0)
        for process in (self.process, *own):
            process.wait()

    def stop(self) -> list[int]:
        """Stop every session ever started; the pids that survived SIGKILL (none expected)."""
        left = stop_sessions(self.sessions) if self.sessions else []
        for process in (self.process, self.code_server):
            if process is not None:
                process.wait()
        return left

    def log_tail(self, lines: int = 40) -> str:
        logs = sorted(self.home.glob("daemon-*.log"))
        text = logs[-1].read_text(errors="replace") if logs else ""
        return "\n".join(text.splitlines()[-lines:])


def daemon_env(control_url: str, dagster_url: str, lake_root: str, **overrides: str) -> dict[str, str]:
    """The settings of a daemon-driven test: sensors on seconds, no webserver to reload."""
    return {
        "DATALOADER_CONTROL_DB_URL": control_url,
        "DAGSTER_PG_URL": sqlalchemy_url(dagster_url, "psycopg2"),
        "DATALOADER_LAKE_ROOT": lake_root,
        "DATALOADER_DAGSTER_URL": "http://127.0.0.1:1",
        # Dagster's gRPC calls to the code server (a run's launch among them) give up after 60 s by
        # default; on a machine this busy a launch takes longer (README, "Reliability under load").
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",
        "DATALOADER_MASTER_INTERVAL_S": "2",
        "DATALOADER_MASTER_BATCH": "100",
        "DATALOADER_RUN_BATCH": "1",
        "DATALOADER_REFRESH_INTERVAL_S": "3600",
        "DATALOADER_FAILED_INTERVAL_S": "3",
        "DATALOADER_RECONCILE_INTERVAL_S": "5",
        "DATALOADER_RECONCILE_QUEUED_GRACE_S": "5",
        "DATALOADER_LONGRUNNING_INTERVAL_S": "3600",
        "DATALOADER_LONGQUEUED_INTERVAL_S": "3600",
        "DATALOADER_RETRY_BASE_S": "1",
        "DATALOADER_RETRY_CAP_S": "5",
        "DATALOADER_LANDING_INTERVAL_S": "86400",
        "DATALOADER_MAINTENANCE_INTERVAL_S": "86400",
        **overrides,
    }


_LATE = (
    "SELECT control_key, last_status, last_error_code, last_status_message "
    "FROM dataloader.table_control WHERE last_status IS DISTINCT FROM 'Succeeded' ORDER BY control_key"
)


def wait_all_succeeded(control: psycopg.Connection | str, deadline_s: float, tick=None) -> list[tuple]:
    """Poll until every control row is Succeeded (calling `tick()` each second); the rows that are not.
    Given a URL instead of a connection, connects for each poll (the server may be restarting)."""
    started = time.monotonic()
    late: list[tuple] = [("?", "control database unreachable", None, None)]
    while True:
        if tick is not None:
            tick()
        try:
            if isinstance(control, str):
                with psycopg.connect(control, connect_timeout=5) as conn:
                    late = conn.execute(_LATE).fetchall()
            else:
                late = control.execute(_LATE).fetchall()
        except psycopg.OperationalError:
            pass  # the server is restarting: poll again
        if not late or time.monotonic() - started > deadline_s:
            return late
        time.sleep(1)


def outcome_counts(control: psycopg.Connection) -> dict[str, int]:
    """History rows by final outcome: Succeeded, requeued unstarted, Failed by code."""
    counts: dict[str, int] = {}
    for status, code, n in control.execute(
        "SELECT load_status, error_code, count(*) FROM dataloader.historical_metadata GROUP BY 1, 2"
    ).fetchall():
        label = (
            "requeued (not started)"
            if code == "not_started"
            else status
            if code is None
            else f"{status} ({code})"
        )
        counts[label] = counts.get(label, 0) + n
    return counts


def ever_failed(control: psycopg.Connection) -> list[tuple]:
    """Every time a control row became Failed (from its trigger-written history), with the message."""
    return control.execute(
        "SELECT control_key, new_values->>'last_error_code', new_values->>'last_status_message' "
        "FROM dataloader.table_control_history WHERE new_values->>'last_status' = 'Failed' "
        "AND old_values->>'last_status' IS DISTINCT FROM 'Failed' ORDER BY id"
    ).fetchall()


def free_port(ports: range) -> int:
    """The first port of `ports` nothing listens on, for a private server."""
    for port in ports:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1} for a private server")


def make_database(admin: str, name: str) -> str:
    """Create database `name` on the server of URL `admin` (a private one); its URL."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


def clean_home(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
