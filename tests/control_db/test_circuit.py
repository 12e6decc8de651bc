"""The circuit breaker per source (control_db.queries.circuit) through the lifecycle the loads use:
which failures trip it, how it holds a source's tables back, probes and closes; concurrent outcomes."""

from __future__ import annotations

import threading

import psycopg
import pytest
from control_rows import AddTable, insert_source

from control_db import queries as q
from control_db.lifecycle import Attempt, Refusal, begin_attempt, record_outcome
from control_db.queries import circuit, circuit_reads
from dataloader_contract.result import LoadFailure, LoadResult, failed_result


@pytest.fixture(autouse=True)
def _empty_circuit_history(control_conn: psycopg.Connection) -> None:
    control_conn.execute("TRUNCATE dataloader.source_circuit_history RESTART IDENTITY")


def _breaker(conn: psycopg.Connection, source: str = "erp", **settings: object) -> None:
    insert_source(conn, source)
    values = {"breaker_failures": 3, "breaker_window_s": 600, "breaker_cooldown_s": 60,
              "breaker_max_cooldown_s": 100, **settings}  # fmt: skip
    assignments = ", ".join(f"{name} = %({name})s" for name in values)
    conn.execute(
        f"UPDATE dataloader.table_control_dbconfig SET {assignments} WHERE db_config_key = %(key)s",
        {**values, "key": source},
    )


def _tables(add_table: AddTable, count: int, source: str = "erp") -> list[str]:
    keys = [f"{source}.public.t{i:02d}" for i in range(count)]
    for key in keys:
        add_table(key, db_config_key=source)
    return keys


def _queue_and_start(
    url: str, conn: psycopg.Connection, *, start: int | None = None, run_id: str = "run-1"
) -> list[Attempt | Refusal]:
    """What a master tick plus its run do up to the workers: queue the ready rows, begin (the first
    `start` of) their attempts."""
    queued = q.queue_ready_tables(conn, limit=100)[:start]
    return [
        begin_attempt(url, load.control_key, run_id=run_id, history_id=load.history_id) for load in queued
    ]


def _fail(url: str, attempt: Attempt, kind: str = "transient", code: str | None = "08001") -> None:
    failure = LoadFailure(kind=kind, code=code, message=f"{attempt.control_key}: connection refused")  # type: ignore[arg-type]
    record_outcome(url, attempt, failed_result(attempt.control_key, "full", failure))


def _succeed(url: str, attempt: Attempt) -> None:
    record_outcome(url, attempt, LoadResult(control_key=attempt.control_key, strategy="full"))


def _state(conn: psycopg.Connection, source: str = "erp") -> q.SourceStatus:
    (status,) = [s for s in q.source_status(conn) if s.db_config_key == source]
    return status


def _transitions(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return [(c.old_state or "-", c.new_state) for c in circuit_reads.circuit_changes(conn)]


def _expire_cooldown(conn: psycopg.Connection, source: str = "erp") -> None:
    # The cool-down has passed (this test does not wait for it; tests/dataloader_defs does).
    conn.execute(
        "UPDATE dataloader.source_circuit SET open_until = now() - interval '1 second' WHERE db_config_key = %s",
        (source,),
    )


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("permanent", "42P01"),
        ("configuration", None),
        ("transient", "worker_died"),
        ("transient", "run_interrupted"),
    ],
)
def test_permanent_configuration_and_orchestrator_failures_never_trip(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable, kind: str, code: str | None
) -> None:
    _breaker(control_conn, breaker_failures=1)
    _tables(add_table, 5)
    for attempt in _queue_and_start(control_db_url, control_conn):
        assert isinstance(attempt, Attempt)
        _fail(control_db_url, attempt, kind, code)
    status = _state(control_conn)
    assert (status.circuit, status.failures) == ("closed", 0)
    assert [r.last_status for r in q.table_status(control_conn)] == ["Failed"] * 5  # the tables' own failures
    assert _transitions(control_conn) == []


def test_transient_failures_open_the_circuit_and_hold_the_source_back(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn)
    keys = _tables(add_table, 6)
    add_table("crm.public.c1", db_config_key="crm")
    queued = {load.control_key: load.history_id for load in q.queue_ready_tables(control_conn, limit=100)}
    crm = begin_attempt(control_db_url, "crm.public.c1", run_id="run-2", history_id=queued["crm.public.c1"])
    assert isinstance(crm, Attempt)
    erp = [begin_attempt(control_db_url, k, run_id="run-1", history_id=queued[k]) for k in keys[:3]]
    for attempt in erp[:2]:
        assert isinstance(attempt, Attempt)
        _fail(control_db_url, attempt)
    assert _state(control_conn).circuit == "closed"
    assert [r.last_status for r in q.table_status(control_conn)][:3] == ["In Progress", "Failed", "Failed"]
    # The rest of this run's erp tables: the third failure opens the circuit, the ones not started yet
    # are held back (back to waiting, no failure), and the two earlier failures go back to waiting too.
    third = erp[2]
    assert isinstance(third, Attempt)
    _fail(control_db_url, third)
    status = _state(control_conn)
    assert (status.circuit, status.failures, status.cooldown_s) == ("open", 3, 60)
    held = [begin_attempt(control_db_url, k, run_id="run-1", history_id=queued[k]) for k in keys[3:]]
    assert all(isinstance(h, Refusal) and h.waiting for h in held)
    by_key = {r.control_key: r for r in q.table_status(control_conn)}
    assert all(by_key[k].last_status is None and by_key[k].retry_count == 0 for k in keys)
    assert (
        by_key["crm.public.c1"].last_status == "In Progress" and by_key["crm.public.c1"].circuit == "closed"
    )
    assert {by_key[k].circuit for k in keys} == {"open"}
    statuses = control_conn.execute(
        "SELECT load_status, count(*) FROM dataloader.historical_metadata WHERE control_key = ANY(%s) "
        "GROUP BY 1 ORDER BY 1",
        (keys,),
    ).fetchall()
    assert statuses == [("Failed", 3), ("Skipped", 3)]
    # Open: the master sensor queues none of erp's tables (crm's are its own business).
    assert q.queue_ready_tables(control_conn, limit=100) == []
    assert _transitions(control_conn) == [("closed", "open")]


def _queued_id(conn: psycopg.Connection, key: str) -> int:
    row = conn.execute(
        "SELECT max(id) FROM dataloader.historical_metadata WHERE control_key = %s AND load_status = 'Queued'",
        (key,),
    ).fetchone()
    assert row and row[0], key
    return row[0]


def _open(url: str, conn: psycopg.Connection, add_table: AddTable, count: int = 4) -> list[str]:
    keys = _tables(add_table, count)
    for attempt in _queue_and_start(url, conn, start=3):
        assert isinstance(attempt, Attempt)
        _fail(url, attempt)
    for key in keys[3:]:
        begin_attempt(url, key, run_id="run-1", history_id=_queued_id(conn, key))
    assert _state(conn).circuit == "open"
    return keys


def test_probe_failure_doubles_the_cooldown_up_to_the_cap_and_success_closes(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn)
    keys = _open(control_db_url, control_conn, add_table)
    for cooldown in (100, 100):  # 60 doubled is 120, capped at breaker_max_cooldown_s = 100
        _expire_cooldown(control_conn)
        (probe,) = _queue_and_start(control_db_url, control_conn)
        assert isinstance(probe, Attempt) and probe.control_key == keys[0]  # the first due table
        assert q.circuit_probes(control_conn) == {keys[0]: "erp"}
        assert q.queue_ready_tables(control_conn, limit=100) == []  # one probe only
        _fail(control_db_url, probe)
        status = _state(control_conn)
        assert (status.circuit, status.cooldown_s, status.probe_control_key) == ("open", cooldown, None)
    _expire_cooldown(control_conn)
    (probe,) = _queue_and_start(control_db_url, control_conn)
    assert isinstance(probe, Attempt)
    _succeed(control_db_url, probe)
    status = _state(control_conn)
    assert (status.circuit, status.failures, status.open_until) == ("closed", 0, None)
    # Closed: the source's due tables queue again, in due order, none of them with a retry spent.
    queued = q.queue_ready_tables(control_conn, limit=100)
    assert [load.control_key for load in queued] == keys[1:]
    assert {r.retry_count for r in q.table_status(control_conn)} == {0}
    assert _transitions(control_conn) == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    # Audited with who made each transition: the load's outcome, or the queueing connection (here the
    # test's; the master sensor's is dataloader-dagster-master) that chose the probe.
    sources = {(c.new_state, c.change_source) for c in circuit_reads.circuit_changes(control_conn)}
    assert sources == {
        ("open", "dataloader-lifecycle"),
        ("half_open", "dataloader-tests"),
        ("closed", "dataloader-lifecycle"),
    }


def test_a_permanent_error_on_the_probe_closes_and_a_configuration_error_hands_over(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn)
    keys = _open(control_db_url, control_conn, add_table)
    _expire_cooldown(control_conn)
    (probe,) = _queue_and_start(control_db_url, control_conn)
    assert isinstance(probe, Attempt)
    _fail(control_db_url, probe, "configuration", None)  # says nothing about the source
    assert _state(control_conn).circuit == "open"
    (second,) = _queue_and_start(control_db_url, control_conn)  # another table probes at once
    assert isinstance(second, Attempt) and second.control_key == keys[1]
    _fail(control_db_url, second, "permanent", "42P01")  # the source answered: its table is missing
    assert _state(control_conn).circuit == "closed"
    rows = {r.control_key: r for r in q.table_status(control_conn)}
    assert (rows[keys[0]].last_status, rows[keys[1]].last_status) == ("Failed", "Failed")  # their own


def test_failures_outside_the_window_start_a_new_count_and_a_success_resets_it(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn, breaker_window_s=60)
    _tables(add_table, 4)
    attempts = _queue_and_start(control_db_url, control_conn)
    assert all(isinstance(a, Attempt) for a in attempts)
    _fail(control_db_url, attempts[0])  # type: ignore[arg-type]
    _fail(control_db_url, attempts[1])  # type: ignore[arg-type]
    control_conn.execute(
        "UPDATE dataloader.source_circuit SET window_started_at = now() - interval '61 seconds'"
    )
    _fail(control_db_url, attempts[2])  # type: ignore[arg-type]
    assert (_state(control_conn).circuit, _state(control_conn).failures) == ("closed", 1)
    _succeed(control_db_url, attempts[3])  # type: ignore[arg-type]
    assert (_state(control_conn).circuit, _state(control_conn).failures) == ("closed", 0)


def test_concurrent_failures_open_once_and_lose_no_count(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn, breaker_failures=4)
    _tables(add_table, 12)
    attempts = _queue_and_start(control_db_url, control_conn)
    barrier = threading.Barrier(len(attempts))

    def fail(attempt: Attempt) -> None:
        barrier.wait()
        _fail(control_db_url, attempt)

    threads = [threading.Thread(target=fail, args=(a,)) for a in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    status = _state(control_conn)
    assert (status.circuit, status.failures) == ("open", 12)
    assert _transitions(control_conn) == [("closed", "open")]
    # Every row ended back to waiting, none Failed, no retry spent.
    assert {(r.last_status, r.retry_count) for r in q.table_status(control_conn)} == {(None, 0)}


def test_a_disabled_breaker_never_opens(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn, breaker_enabled=False, breaker_failures=1)
    _tables(add_table, 2)
    for attempt in _queue_and_start(control_db_url, control_conn):
        assert isinstance(attempt, Attempt)
        _fail(control_db_url, attempt)
    assert _state(control_conn).circuit == "closed"


@pytest.mark.parametrize(
    ("column", "value", "rule"),
    [
        ("breaker_failures", 0, "must be at least 1"),
        ("breaker_window_s", 0, "must be at least 1 second"),
        ("breaker_cooldown_s", -5, "must be at least 1 second"),
        ("breaker_max_cooldown_s", 10, "must be at least breaker_cooldown_s"),
    ],
)
def test_bad_breaker_settings_are_refused_naming_the_column(
    control_conn: psycopg.Connection, column: str, value: int, rule: str
) -> None:
    insert_source(control_conn, "erp")
    with pytest.raises(psycopg.errors.CheckViolation, match=f"table_control_dbconfig.{column}: {rule}"):
        control_conn.execute(f"UPDATE dataloader.table_control_dbconfig SET {column} = %s", (value,))


def test_orchestrator_codes_are_the_retry_analysis_infrastructure_codes() -> None:
    from dataloader_defs.retry_rules import INFRASTRUCTURE_CODES

    assert set(INFRASTRUCTURE_CODES) == circuit.ORCHESTRATOR_CODES


def test_the_readme_closes_a_circuit_by_hand_and_it_is_audited(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    from control_rows import readme_sql_statements

    _breaker(control_conn)
    keys = _open(control_db_url, control_conn, add_table)
    (statement,) = [s for s in readme_sql_statements() if "dataloader.source_circuit" in s]
    control_conn.execute(statement)  # type: ignore[arg-type]
    assert _state(control_conn).circuit == "closed"
    assert [load.control_key for load in q.queue_ready_tables(control_conn, limit=100)] == keys
    last = circuit_reads.circuit_changes(control_conn)[-1]
    assert (last.old_state, last.new_state, last.change_source, last.reason) == (
        "open", "closed", "dataloader-tests", "closed by hand",
    )  # fmt: skip


def test_dataloader_status_shows_the_circuit(
    control_db_url: str,
    control_conn: psycopg.Connection,
    add_table: AddTable,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from control_db import cli

    _breaker(control_conn)
    keys = _open(control_db_url, control_conn, add_table)
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    assert cli.main(["status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "circuit"
    assert all(line.split()[-1] == "open" for line in lines if line.startswith(tuple(keys)))
    below = lines[lines.index("Sources whose circuit breaker is not closed:") + 1 :]
    assert below[0].split() == ["source", "circuit", "failures", "open_until", "probe", "reason"]
    assert below[2].split()[:3] == ["erp", "open", "3"]


def test_a_probe_a_monitor_failed_is_replaced_by_the_next_due_table(
    control_db_url: str, control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    _breaker(control_conn)
    keys = _open(control_db_url, control_conn, add_table)
    _expire_cooldown(control_conn)
    (probe,) = q.queue_ready_tables(control_conn, limit=100)
    assert probe.control_key == keys[0]
    # Its run never started: the reconcile pass fails the row (an orchestrator failure, not counted).
    assert q.mark_failed(control_conn, keys[0], message="run lost", kind="transient", code="queued_run_lost")
    (second,) = q.queue_ready_tables(control_conn, limit=100)
    assert second.control_key == keys[1]
    status = _state(control_conn)
    assert (status.circuit, status.probe_control_key, status.failures) == ("half_open", keys[1], 3)
