"""The circuit breaker on a real MariaDB that is stopped and started mid-test (a private server, see
private_mariadb.py), driven by the real master sensor and load runs in a real Dagster instance."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from dagster import build_sensor_context
from defs_support import add_control, execute_request, request_keys, tick
from private_mariadb import PrivateMariaDB

from control_db import queries
from control_db.queries import circuit_reads as circuit
from dataloader_defs.defs.sensors.circuit_monitor import build_circuit_monitor
from dataloader_defs.defs.sensors.circuit_tags import TAG_CIRCUIT_PROBE

SOURCE = "maria_src"
TABLES = 30
FAILURES = 3  # breaker_failures
CONCURRENCY = 2  # DATALOADER_RUN_CONCURRENCY: tables of one run loading at once
COOLDOWN_S, MAX_COOLDOWN_S = 20, 30


@pytest.fixture
def maria() -> Iterator[PrivateMariaDB]:
    try:
        server = PrivateMariaDB()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"no private MariaDB: {exc}")
    server.start()
    try:
        yield server
    finally:
        server.remove()


def _source_tables(maria: PrivateMariaDB) -> dict[str, int]:
    """30 tables `t00`..`t29` in database `src`, table i holding i + 1 rows; name -> row count."""
    conn = maria.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE src")
        cur.execute("USE src")
        for i in range(TABLES):
            cur.execute(f"CREATE TABLE t{i:02d} (id int PRIMARY KEY, name varchar(20), amount decimal(10,2))")
            values = ", ".join(f"({n}, 'row {n}', {n}.25)" for n in range(i + 1))
            cur.execute(f"INSERT INTO t{i:02d} VALUES {values}")
    conn.close()
    return {f"t{i:02d}": i + 1 for i in range(TABLES)}


def _register(conn: psycopg.Connection, maria: PrivateMariaDB, names: list[str]) -> list[str]:
    config = {"host": "127.0.0.1", "port": maria.port, "database": "src", "user": "root"}
    conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope, "
        "breaker_failures, breaker_window_s, breaker_cooldown_s, breaker_max_cooldown_s) "
        "VALUES (%s, 'mariadb', %s::jsonb, 'literal', %s, 600, %s, %s)",
        (SOURCE, json.dumps(config), FAILURES, COOLDOWN_S, MAX_COOLDOWN_S),
    )
    conn.execute("TRUNCATE dataloader.source_circuit_history RESTART IDENTITY")
    keys = []
    for name in names:
        key = f"{SOURCE}.src.{name}"
        # A yearly cron: a loaded table is not due again while the test runs.
        add_control(conn, key, db_config_key=SOURCE, source_schema=None, source_table=name,
                    destination_table=f"bronze/maria/{name}", cron="0 0 1 1 *")  # fmt: skip
        keys.append(key)
    return keys


def _attempts(conn: psycopg.Connection, status: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM dataloader.historical_metadata WHERE control_key LIKE %s AND load_status = %s",
        (f"{SOURCE}.%", status),
    ).fetchone()
    return row[0] if row else 0


def _circuit(conn: psycopg.Connection) -> queries.SourceStatus:
    (status,) = [s for s in queries.source_status(conn) if s.db_config_key == SOURCE]
    return status


def _wait_cooldown(conn: psycopg.Connection, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while conn.execute(
        "SELECT open_until > now() FROM dataloader.source_circuit WHERE db_config_key = %s", (SOURCE,)
    ).fetchone() == (True,):
        assert time.monotonic() < deadline, "the cool-down did not end"
        time.sleep(0.5)


def _delta_rows(lake_root: Path, name: str) -> list[tuple]:
    from deltalake import DeltaTable

    table = DeltaTable(str(lake_root / "bronze" / "maria" / name)).to_pyarrow_table()
    return sorted(zip(*(table.column(c).to_pylist() for c in ("id", "name", "amount")), strict=True))


def test_a_stopped_mariadb_opens_its_circuit_one_probe_follows_and_a_restart_loads_everything(
    instance, resources, control_conn: psycopg.Connection, lake_root: Path, maria: PrivateMariaDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("DATALOADER_MASTER_BATCH", "10")
    monkeypatch.setenv("DATALOADER_RUN_BATCH", "10")
    monkeypatch.setenv("DATALOADER_RUN_CONCURRENCY", str(CONCURRENCY))
    counts = _source_tables(maria)
    keys = _register(control_conn, maria, sorted(counts))
    control_db = resources["control_db"]
    maria.stop()

    # The first run of 10 tables: the third failure opens the circuit; the run's tables not started by
    # then end without loading, back to waiting. N failures (plus a load already running), not 30 x retries.
    (request,) = tick(instance, control_db).run_requests
    execute_request(instance, resources, request, raise_on_error=False)
    failed = _attempts(control_conn, "Failed")
    assert FAILURES <= failed <= FAILURES + CONCURRENCY - 1
    assert _attempts(control_conn, "Skipped") == 10 - failed
    status = _circuit(control_conn)
    assert (status.circuit, status.cooldown_s) == ("open", COOLDOWN_S)
    rows = queries.table_status(control_conn)
    assert {(r.last_status, r.retry_count, r.circuit) for r in rows} == {(None, 0, "open")}

    # Open: the master sensor queues none of its tables, and the assets say why.
    assert tick(instance, control_db).run_requests == []
    monitor = build_circuit_monitor(_snapshot(control_db.url))
    events = monitor(
        build_sensor_context(instance=instance, resources={"control_db": control_db})
    ).asset_events
    assert len(events) == TABLES and {e.metadata["circuit"].value for e in events} == {"open"}

    # After the cool-down one probe table loads (half-open); the source is still down: open again, longer.
    _wait_cooldown(control_conn)
    (probe,) = tick(instance, control_db).run_requests
    assert request_keys(probe) == [keys[0]] and probe.tags[TAG_CIRCUIT_PROBE] == SOURCE
    assert _circuit(control_conn).circuit == "half_open"
    execute_request(instance, resources, probe, raise_on_error=False)
    status = _circuit(control_conn)
    assert (status.circuit, status.cooldown_s) == ("open", MAX_COOLDOWN_S)  # 2 x 20 capped at 30
    assert _attempts(control_conn, "Failed") == failed + 1
    assert tick(instance, control_db).run_requests == []

    # The source is back: the next probe closes the circuit and every table loads, in due order.
    maria.start()
    _wait_cooldown(control_conn)
    (probe,) = tick(instance, control_db).run_requests
    assert request_keys(probe) == [keys[0]]
    execute_request(instance, resources, probe)
    assert _circuit(control_conn).circuit == "closed"
    loaded = [keys[0]]
    for _ in range(10):
        requests = tick(instance, control_db).run_requests
        if not requests:
            break
        for request in requests:
            loaded.extend(request_keys(request))
            execute_request(instance, resources, request)
    assert loaded == keys  # config_id order: the order they were due in
    rows = queries.table_status(control_conn)
    assert {(r.last_status, r.retry_count, r.circuit) for r in rows} == {("Succeeded", 0, "closed")}
    for name, count in counts.items():
        assert _delta_rows(lake_root, name) == _source_rows(maria, name), name
        assert len(_delta_rows(lake_root, name)) == count
    assert _attempts(control_conn, "Failed") == failed + 1
    assert _attempts(control_conn, "Succeeded") == TABLES
    assert [(c.old_state, c.new_state) for c in circuit.circuit_changes(control_conn)] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def _snapshot(url: str):
    from dataloader_defs.control_snapshot import read_snapshot

    with queries.connect(url, "tests") as conn:
        return read_snapshot(conn)


def _source_rows(maria: PrivateMariaDB, name: str) -> list[tuple]:
    conn = maria.connect("src")
    with conn.cursor() as cur:
        cur.execute(f"SELECT id, name, amount FROM {name} ORDER BY id")
        rows = sorted(cur.fetchall())
    conn.close()
    return rows
