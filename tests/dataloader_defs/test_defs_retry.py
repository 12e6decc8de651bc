"""Retry analysis on errors produced live by PostgreSQL and MariaDB: the worker's classification gives
kind and code, the retry rules decide from those alone; and the analysis job end to end."""

from __future__ import annotations

import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from dagster import DagsterInstance
from defs_support import add_control, row

from control_db import queries
from dataloader_contract.errors import LoadError
from dataloader_defs.defs.jobs import dataloader_retry_analysis
from dataloader_defs.retry_rules import INFRASTRUCTURE_CODES, backoff, classify
from pipes_workers.sources import failures


def _error(fn) -> LoadError:
    """The LoadError the worker makes of the live driver exception `fn` raises."""
    try:
        fn()
    except Exception as exc:
        return failures.classify(exc, what="test")
    raise AssertionError("expected an error")


def _verdict(error: LoadError) -> str:
    return classify(error.kind, error.code).verdict


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_is_transient():
    message = _error(
        lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", connect_timeout=3)
    )
    assert "Connection refused" in str(message)
    assert _verdict(message) == "transient"


def test_missing_table_is_permanent(source_pg_url):
    with psycopg.connect(source_pg_url) as conn:
        message = _error(lambda: conn.execute("SELECT * FROM public.table_that_is_not_there"))
    assert "does not exist" in str(message) and message.code == "42P01"
    assert _verdict(message) == "permanent"


def test_lock_timeout_is_transient(source_pg_url):
    name = f"locked_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(source_pg_url, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {name} (id int)")
    holder = psycopg.connect(source_pg_url)
    waiter = psycopg.connect(source_pg_url)
    try:
        holder.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
        waiter.execute("SET lock_timeout = '200ms'")
        message = _error(lambda: waiter.execute(f"SELECT * FROM {name}"))
    finally:
        holder.close()
        waiter.close()
    assert "canceling statement due to lock timeout" in str(message) and message.code == "55P03"
    assert _verdict(message) == "transient"


def test_deadlock_is_transient(source_pg_url):
    name = f"dead_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(source_pg_url, autocommit=True) as setup:
        setup.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int)")
        setup.execute(f"INSERT INTO {name} VALUES (1, 0), (2, 0)")
    a, b = psycopg.connect(source_pg_url), psycopg.connect(source_pg_url)
    errors: list[str] = []
    barrier = threading.Barrier(2)

    def worker(conn: psycopg.Connection, first: int, second: int) -> None:
        try:
            conn.execute(f"UPDATE {name} SET v = 1 WHERE id = %s", (first,))
            barrier.wait()
            conn.execute(f"UPDATE {name} SET v = 1 WHERE id = %s", (second,))
            conn.commit()
        except psycopg.Error as exc:
            errors.append(failures.classify(exc, what="test"))
            conn.rollback()

    threads = [
        threading.Thread(target=worker, args=(a, 1, 2)),
        threading.Thread(target=worker, args=(b, 2, 1)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    a.close()
    b.close()
    (message,) = errors
    assert "deadlock detected" in str(message) and message.code == "40P01"
    assert _verdict(message) == "transient"


def test_bad_password_is_permanent(mariadb_url):
    import pymysql

    parts = urlsplit(mariadb_url)
    user = f"dl_{uuid.uuid4().hex[:8]}"
    admin = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%%' IDENTIFIED BY 'right-password'")
            cur.execute(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY 'right-password'")
        message = _error(
            lambda: pymysql.connect(
                host=parts.hostname,
                port=parts.port or 3306,
                user=user,
                password="wrong-password",
                connect_timeout=5,
            )
        )
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{user}'@'%%'")
            cur.execute(f"DROP USER IF EXISTS '{user}'@'localhost'")
        admin.close()
    assert "Access denied for user" in str(message) and message.code == "1045"
    assert "wrong-password" not in str(message)
    assert _verdict(message) == "permanent"


def test_mariadb_lock_wait_timeout_is_transient(mariadb_url):
    import pymysql

    parts = urlsplit(mariadb_url)
    kwargs = dict(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/"),
    )
    holder, waiter = pymysql.connect(**kwargs), pymysql.connect(**kwargs)
    try:
        with holder.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS lockme (id int PRIMARY KEY) ENGINE=InnoDB")
            cur.execute("INSERT IGNORE INTO lockme VALUES (1)")
            holder.commit()
            cur.execute("SELECT * FROM lockme WHERE id = 1 FOR UPDATE")
        with waiter.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            message = _error(lambda: cur.execute("UPDATE lockme SET id = 1 WHERE id = 1"))
    finally:
        holder.rollback()
        holder.close()
        waiter.close()
    assert "Lock wait timeout exceeded" in str(message) and message.code == "1205"
    assert _verdict(message) == "transient"


def test_authentication_stays_permanent_even_with_a_timeout_in_the_message():
    # libpq joins the errors of every host it tried; the worker used to call this transient.
    exc = psycopg.OperationalError('password authentication failed for user "loader"; timeout expired')
    error = failures.classify(exc, what="test")
    assert error.kind == "permanent" and _verdict(error) == "permanent"


@pytest.mark.parametrize(
    ("kind", "code", "verdict"),
    [
        ("transient", "08006", "transient"),
        ("transient", "worker_died", "transient"),
        ("permanent", "42P01", "permanent"),
        ("configuration", None, "permanent"),
        (None, None, "unknown"),
        (None, "08006", "unknown"),  # no kind: nobody classified it, a person looks
    ],
)
def test_classify_decides_from_kind_and_code(kind, code, verdict):
    assert classify(kind, code).verdict == verdict


def test_infrastructure_codes_are_explained():
    for code in INFRASTRUCTURE_CODES:
        assert INFRASTRUCTURE_CODES[code] in classify("transient", code).reason


def test_backoff_is_exponential_and_capped():
    assert [backoff(n).total_seconds() for n in range(4)] == [60, 120, 240, 480]
    assert backoff(20) == timedelta(hours=1)


def _fail(conn: psycopg.Connection, key: str, error: LoadError) -> None:
    queued = queries.queue_by_hand(conn, key)
    queries.mark_in_progress(conn, key, run_id=f"run-{key}", history_id=queued.history_id)
    queries.mark_failed(conn, key, message=str(error), kind=error.kind, code=error.code)


def test_retry_analysis_job_retries_transient_and_reviews_permanent(
    control_conn, source, control_db, instance: DagsterInstance
):
    add_control(control_conn, "r.transient", retry_count=1)
    add_control(control_conn, "r.permanent")
    refused = _error(
        lambda: psycopg.connect(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", connect_timeout=3)
    )
    with psycopg.connect(source) as conn:
        missing = _error(lambda: conn.execute("SELECT * FROM public.gone"))
    _fail(control_conn, "r.transient", refused)
    _fail(control_conn, "r.permanent", missing)

    for key in ("r.transient", "r.permanent"):
        result = dataloader_retry_analysis.execute_in_process(
            run_config={"ops": {"analyse_failure": {"config": {"control_key": key}}}},
            resources={"control_db": control_db},
            instance=instance,
        )
        assert result.success

    retried = row(control_conn, "r.transient")
    assert retried.last_status is None and retried.retry_count == 2
    due_in = retried.next_load_date_time - datetime.now(UTC)
    assert timedelta(seconds=100) < due_in <= timedelta(seconds=120)  # 60 s * 2**1
    assert queries.history_rows(control_conn, "r.transient")[-1].retry_decision == "retry"
    # The schedule is said once (it used to read "retry 2 of 3 after 00:02:00: retry 2/3 in 120s: …").
    assert retried.last_status_message == ("retry 2 of 3 in 120s: transient error (no code)"), (
        retried.last_status_message
    )

    reviewed = row(control_conn, "r.permanent")
    assert reviewed.last_status == "Failed" and reviewed.manual_review
    assert "permanent error (code 42P01)" in reviewed.manual_review_reason
    assert queries.history_rows(control_conn, "r.permanent")[-1].retry_decision == "manual_review"
