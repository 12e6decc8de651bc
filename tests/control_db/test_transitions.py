"""Status transitions and their guards, on the real control database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from control_rows import BACKFILL, INCREMENTAL, AddTable, start_queued, succeed

from control_db import queries as q
from control_db.schedule import next_fire
from dataloader_contract.result import LoadFailure, LoadResult

KEY = "erp.public.orders"


def _status(conn: psycopg.Connection, key: str = KEY) -> str | None:
    row = q.get_control_row(conn, key)
    assert row is not None
    return row.last_status


def _run(conn: psycopg.Connection, key: str = KEY) -> int:
    """Queue and start `key`; return its history id."""
    return start_queued(conn, key)


def _fail(conn: psycopg.Connection, key: str = KEY) -> None:
    _run(conn, key)
    assert q.mark_failed(conn, key, message="OperationalError: connection refused", kind="transient")


def _db_now(conn: psycopg.Connection) -> datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]


# --- reads -------------------------------------------------------------------------------------


def test_get_rows_and_source(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    config_id = add_table(KEY, **INCREMENTAL)
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.config_id == config_id
    assert row.primary_keys == ["id"] and row.load_strategy == "incremental" and row.max_retries == 3
    assert q.get_control_row(control_conn, "nope") is None
    source = q.get_source_config(control_conn, "erp")
    assert source == q.SourceDbConfig(
        "erp",
        "postgresql",
        {"host": "ERP_HOST", "port": 5432, "database": "ERP_DB", "password": "ERP_PASSWORD"},
        "env",
    )
    assert q.get_source_config(control_conn, "nope") is None


def test_connect_names_the_component(control_db_url: str) -> None:
    with q.connect(control_db_url, "master_sensor") as conn:
        assert conn.autocommit
        assert conn.execute("SHOW application_name").fetchone() == ("dataloader-master_sensor",)


def test_ready_means_active_due_and_not_busy(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    past = datetime.now(UTC) - timedelta(hours=1)
    add_table("a.new")  # NULL status, NULL next load: due now
    add_table("a.overdue", next_load_date_time=past, last_status="Succeeded")
    add_table("a.future", next_load_date_time=future)
    add_table("a.inactive", is_active=False)
    for status in ("Queued", "In Progress", "Failed"):
        add_table(f"a.{status.replace(' ', '_').lower()}", last_status=status)
    assert [load.control_key for load in q.queue_ready_tables(control_conn, limit=1)] == ["a.new"]
    assert [load.control_key for load in q.queue_ready_tables(control_conn, limit=10)] == ["a.overdue"]


# --- queue_ready_tables ------------------------------------------------------------------------


def test_queue_opens_history_and_respects_limit(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    ids = [add_table(f"erp.public.t{i}") for i in range(5)]
    add_table("erp.public.later", next_load_date_time=datetime.now(UTC) + timedelta(days=1))
    first = q.queue_ready_tables(control_conn, limit=3)
    assert [load.config_id for load in first] == ids[:3]
    assert all(load.db_config_key == "erp" and load.load_strategy == "full" for load in first)
    second = q.queue_ready_tables(control_conn, limit=3)
    assert [load.config_id for load in second] == ids[3:]
    assert q.queue_ready_tables(control_conn, limit=3) == []

    history = q.open_history_rows(control_conn)
    assert [h.id for h in history] == [load.history_id for load in first + second]
    assert all(h.load_status == "Queued" and h.load_queued_time is not None for h in history)
    assert _status(control_conn, "erp.public.t0") == "Queued"
    assert q.get_control_row(control_conn, "erp.public.t0").status_changed_at is not None  # type: ignore[union-attr]


def test_one_chunked_backfill_per_source(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table("erp.public.big1", **BACKFILL)
    add_table("erp.public.big2", **BACKFILL)
    add_table("crm.public.big3", **{**BACKFILL, "db_config_key": "crm"})
    add_table("erp.public.small")
    queued = {load.control_key for load in q.queue_ready_tables(control_conn, limit=10)}
    assert queued == {"erp.public.big1", "crm.public.big3", "erp.public.small"}
    # big2 waits while big1 is Queued, then In Progress ...
    assert q.queue_ready_tables(control_conn, limit=10) == []
    (h,) = [h for h in q.open_history_rows(control_conn) if h.control_key == "erp.public.big1"]
    assert q.mark_in_progress(control_conn, "erp.public.big1", run_id="r", history_id=h.id) == h.id
    assert q.queue_ready_tables(control_conn, limit=10) == []
    # ... and is queued once big1 is done.
    assert q.mark_failed(control_conn, "erp.public.big1", message="boom", kind="transient")
    assert [load.control_key for load in q.queue_ready_tables(control_conn, limit=10)] == ["erp.public.big2"]


# --- mark_in_progress --------------------------------------------------------------------------


def test_in_progress_from_queued(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    add_table("erp.public.other")
    loads = {load.control_key: load for load in q.queue_ready_tables(control_conn, limit=10)}
    other_history = loads["erp.public.other"].history_id
    # Guard: the history row must belong to this table.
    assert q.mark_in_progress(control_conn, KEY, run_id="r1", history_id=other_history) is None
    assert _status(control_conn) == "Queued"

    history_id = loads[KEY].history_id
    assert q.mark_in_progress(
        control_conn, KEY, run_id="r1", history_id=history_id, run_url="http://ui/runs/r1"
    ) == (history_id)
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_status == "In Progress" and row.last_run_id == "r1"
    assert row.last_run_url == "http://ui/runs/r1"
    (h,) = [h for h in q.history_rows(control_conn, KEY)]
    assert (h.load_status, h.run_id) == ("In Progress", "r1") and h.load_start_time is not None
    assert [r.control_key for r in q.in_progress_rows(control_conn)] == [KEY]
    # Guard: not Queued any more.
    assert q.mark_in_progress(control_conn, KEY, run_id="r2", history_id=history_id) is None
    assert q.queue_by_hand(control_conn, KEY) is None  # not by hand while In Progress either


@pytest.mark.parametrize("status", [None, "Succeeded", "Failed"])
def test_by_hand_goes_through_queued(
    control_conn: psycopg.Connection, add_table: AddTable, status: str | None
) -> None:
    add_table(KEY, last_status=status, incremental_value="41", **INCREMENTAL)
    queued = q.queue_by_hand(control_conn, KEY)
    assert queued is not None and _status(control_conn) == "Queued"
    assert q.mark_in_progress(control_conn, KEY, run_id="manual", history_id=queued.history_id) == (
        queued.history_id
    )
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.id, h.load_status, h.run_id, h.watermark_before, h.load_strategy) == (
        queued.history_id,
        "In Progress",
        "manual",
        "41",
        "incremental",
    )
    assert h.load_queued_time is not None and h.load_queued_time <= h.load_start_time  # type: ignore[operator]
    assert q.queue_by_hand(control_conn, KEY) is None  # In Progress: nothing to queue or take over


def test_by_hand_takes_over_a_queued_attempt(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    (load,) = q.queue_ready_tables(control_conn, limit=1)
    taken = q.queue_by_hand(control_conn, KEY)
    assert taken is not None and taken.history_id == load.history_id
    assert q.mark_in_progress(control_conn, KEY, run_id="manual", history_id=taken.history_id)
    (attempt,) = q.history_rows(control_conn, KEY)
    assert (attempt.load_status, attempt.run_id) == ("In Progress", "manual")
    # The sensor's run then finds its attempt started by someone else.
    assert q.mark_in_progress(control_conn, KEY, run_id="sensor", history_id=load.history_id) is None


# --- mark_succeeded ----------------------------------------------------------------------------


def test_succeeded_schedules_and_stores_watermark(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(
        KEY,
        cron="30 2 * * *",
        cron_timezone="Europe/Amsterdam",
        load_full=True,
        retry_count=2,
        incremental_value="10",
        **INCREMENTAL,
    )
    history_id = _run(control_conn)
    before = _db_now(control_conn)
    assert succeed(
        control_conn,
        KEY,
        history_id,
        rows_read=123,
        watermark_before="10",
        watermark_after="20",
        load_full_done=True,
        deletes_note="loaded 123 rows",  # the row's message is the result's status_message: its notes
    )
    row = q.get_control_row(control_conn, KEY)
    assert row is not None
    assert (row.last_status, row.retry_count, row.incremental_value, row.load_full) == (
        "Succeeded",
        0,
        "20",
        False,
    )
    assert (row.last_rows_processed, row.last_status_message) == (123, "loaded 123 rows")
    after = _db_now(control_conn)  # the statement ran between these two clock readings
    fires = {next_fire("30 2 * * *", "Europe/Amsterdam", moment) for moment in (before, after)}
    assert row.next_load_date_time in fires
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.load_status, h.rows_processed, h.watermark_before, h.watermark_after) == (
        "Succeeded",
        123,
        "10",
        "20",
    )
    assert h.load_end_time is not None and h.load_end_time >= h.load_start_time  # type: ignore[operator]
    assert q.open_history_rows(control_conn) == []
    # Guard: not In Progress any more.
    assert not succeed(control_conn, KEY, history_id, rows_read=1)
    assert not succeed(control_conn, "erp.public.nope", history_id, rows_read=1)


def test_succeeded_refuses_a_failed_result_or_another_tables(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY, **INCREMENTAL)
    history_id = _run(control_conn)
    failed = LoadResult(
        control_key=KEY,
        strategy="incremental",
        error=LoadFailure(kind="transient", message=f"{KEY}: connection reset"),
    )
    with pytest.raises(ValueError, match="needs a successful LoadResult"):
        q.mark_succeeded(control_conn, KEY, history_id=history_id, run_id="run-1", result=failed)
    other = LoadResult(control_key="erp.public.other", strategy="incremental", rows_read=1)
    with pytest.raises(ValueError, match="got erp.public.other's"):
        q.mark_succeeded(control_conn, KEY, history_id=history_id, run_id="run-1", result=other)
    assert _status(control_conn) == "In Progress"


def test_succeeded_keeps_watermark_and_hands_backfill_over(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY, incremental_value="5", load_full=True, **BACKFILL)
    history_id = _run(control_conn)
    assert succeed(
        control_conn, KEY, history_id, rows_read=0, watermark_before="5", next_load_strategy="incremental"
    )
    row = q.get_control_row(control_conn, KEY)
    assert row is not None
    assert (row.incremental_value, row.load_strategy, row.load_full) == ("5", "incremental", True)
    # The hand-over is visible on the row (issue 19: the demo's backfill table turned incremental silently).
    assert row.last_status_message == "backfill complete: the row loads incremental from now on"


# --- mark_failed -------------------------------------------------------------------------------


def test_failed_closes_history(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    history_id = _run(control_conn)
    assert q.mark_failed(
        control_conn,
        KEY,
        message="PermanentLoadError: column x missing",
        history_id=history_id,
        kind="transient",
    )
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_status == "Failed"
    assert row.last_status_message == "PermanentLoadError: column x missing"
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.load_status, h.error_message) == ("Failed", "PermanentLoadError: column x missing")
    assert h.load_end_time is not None
    assert not q.mark_failed(control_conn, KEY, message="again", kind="transient")  # guard: already Failed


def test_failed_from_queued_without_history_id(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    q.queue_ready_tables(control_conn, limit=1)
    assert q.mark_failed(control_conn, KEY, message="queued too long", kind="transient")
    assert q.open_history_rows(control_conn) == []
    add_table("erp.public.idle")
    assert not q.mark_failed(control_conn, "erp.public.idle", message="never ran", kind="transient")


def test_queuing_a_row_forgets_the_previous_runs_id_link_and_message(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    """A Queued row must not point at the previous, finished run (issue 19: rows left Queued after a
    Ctrl-C showed the last run's id, link and message)."""
    add_table(KEY)
    history_id = start_queued(control_conn, KEY, run_id="run-old")
    control_conn.execute(
        "UPDATE dataloader.table_control SET last_run_url = 'http://ui/runs/run-old' WHERE control_key = %s",
        (KEY,),
    )
    assert succeed(control_conn, KEY, history_id, run_id="run-old")
    control_conn.execute("UPDATE dataloader.table_control SET last_status_message = 'old'")
    control_conn.execute("UPDATE dataloader.table_control SET next_load_date_time = NULL")

    for queue in (
        lambda: q.queue_ready_tables(control_conn, limit=1),
        lambda: q.queue_by_hand(control_conn, KEY),
    ):
        assert queue()
        row = q.get_control_row(control_conn, KEY)
        assert row is not None and row.last_status == "Queued"
        assert (row.last_run_id, row.last_run_url, row.last_status_message) == (None, None, None)
        # back to a finished run's state for the next way of queuing
        control_conn.execute(
            "UPDATE dataloader.table_control SET last_status = 'Succeeded', last_run_id = 'run-old', "
            "last_run_url = 'http://ui/runs/run-old', last_status_message = 'old' WHERE control_key = %s",
            (KEY,),
        )
        control_conn.execute(
            "UPDATE dataloader.historical_metadata SET load_status = 'Failed', load_end_time = now()"
        )


def test_a_failed_queued_attempt_names_the_run_it_was_queued_for(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    """historical_metadata.run_id is set whenever the failing side knows the run (issue 19)."""
    add_table(KEY)
    (queued,) = q.queue_ready_tables(control_conn, limit=1)
    assert q.mark_failed(
        control_conn,
        KEY,
        message="the run queued for attempt 1 ended FAILURE without starting the load",
        kind="transient",
        code="queued_run_lost",
        history_id=queued.history_id,
        run_id="run-queued",
        queued_only=True,
    )
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.load_status, h.run_id) == ("Failed", "run-queued")


def test_queued_only_leaves_an_attempt_another_run_started(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table(KEY)
    history_id = start_queued(control_conn, KEY, run_id="run-hand")  # taken over: In Progress
    assert not q.mark_failed(
        control_conn,
        KEY,
        message="run interrupted",
        kind="transient",
        history_id=history_id,
        run_id="run-queued",
        queued_only=True,
    )
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.load_status, h.run_id) == ("In Progress", "run-hand")


def test_a_committed_attempt_is_corrected_whatever_it_was_recorded_as(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    """Its outcome never written (In Progress) or failed by a monitor (Failed): a later load that
    finds the run's Delta commit records it Succeeded and closed, saying what it was (issue 23).
    Before: only Failed rows were corrected, an In Progress one stayed open for good."""
    add_table(KEY)
    cut_off = _run(control_conn)  # run-1: committed, then its process ended before recording it
    assert q.mark_committed_attempt(control_conn, KEY, "run-1") == 1
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.id, h.load_status) == (cut_off, "Succeeded") and h.load_end_time is not None
    assert "(was: In Progress)" in (h.error_message or "")
    assert q.mark_committed_attempt(control_conn, KEY, "run-1") == 0  # already Succeeded: untouched

    add_table("erp.public.lines")
    failed = start_queued(control_conn, "erp.public.lines", run_id="run-2")
    assert q.mark_failed(
        control_conn, "erp.public.lines", message="run vanished", history_id=failed, kind="transient"
    )
    assert q.mark_committed_attempt(control_conn, "erp.public.lines", "run-2") == 1
    (h,) = q.history_rows(control_conn, "erp.public.lines")
    assert h.load_status == "Succeeded" and "(was: Failed: run vanished)" in (h.error_message or "")


# --- retry decisions ---------------------------------------------------------------------------


def test_reset_for_retry(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    _fail(control_conn)
    assert [r.control_key for r in q.failed_retryable(control_conn)] == [KEY]
    before = _db_now(control_conn)
    assert q.reset_for_retry(
        control_conn, KEY, backoff=timedelta(minutes=4), reason="transient: connection refused"
    )
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_status is None and row.retry_count == 1
    assert row.next_load_date_time is not None
    assert timedelta(minutes=4) <= row.next_load_date_time - before < timedelta(minutes=5)
    assert row.last_status_message == "retry 1 of 3 in 240s: transient: connection refused"
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.retry_decision, h.retry_reason) == ("retry", "transient: connection refused")
    assert q.queue_ready_tables(control_conn, limit=10) == []  # waiting for its backoff
    assert not q.reset_for_retry(control_conn, KEY, backoff=timedelta(0), reason="again")  # guard: not Failed


def test_no_retry_when_retries_are_used_up(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY, max_retries=1, retry_count=1)
    _fail(control_conn)
    assert q.failed_retryable(control_conn) == []
    assert not q.reset_for_retry(control_conn, KEY, backoff=timedelta(0), reason="transient")
    assert _status(control_conn) == "Failed"


def test_manual_review(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    assert not q.mark_manual_review(control_conn, KEY, reason="not failed")  # guard: not Failed
    _fail(control_conn)
    assert q.mark_manual_review(control_conn, KEY, reason="permanent: authentication failed")
    assert not q.mark_manual_review(control_conn, KEY, reason="twice")
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and row.last_status == "Failed" and row.manual_review
    assert row.manual_review_reason == "permanent: authentication failed"
    (h,) = q.history_rows(control_conn, KEY)
    assert (h.retry_decision, h.retry_reason) == ("manual_review", "permanent: authentication failed")
    assert q.failed_retryable(control_conn) == []
    assert not q.reset_for_retry(control_conn, KEY, backoff=timedelta(0), reason="transient")
    # A person launches it by hand and it succeeds: the review flag is cleared.
    queued = q.queue_by_hand(control_conn, KEY)
    assert queued is not None
    history_id = q.mark_in_progress(control_conn, KEY, run_id="manual", history_id=queued.history_id)
    assert history_id is not None
    assert succeed(control_conn, KEY, history_id, run_id="manual", rows_read=1)
    row = q.get_control_row(control_conn, KEY)
    assert row is not None and not row.manual_review and row.manual_review_reason is None


# --- monitors' questions -----------------------------------------------------------------------


def test_stuck_queued_and_running(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table("erp.public.q")
    add_table("erp.public.r")
    loads = {load.control_key: load for load in q.queue_ready_tables(control_conn, limit=10)}
    q.mark_in_progress(control_conn, "erp.public.r", run_id="r", history_id=loads["erp.public.r"].history_id)
    hour = timedelta(hours=1)
    assert q.stuck_queued(control_conn, hour) == [] and q.stuck_running(control_conn, hour) == []
    control_conn.execute("UPDATE dataloader.table_control SET status_changed_at = now() - interval '2 hours'")
    assert [r.control_key for r in q.stuck_queued(control_conn, hour)] == ["erp.public.q"]
    assert [r.control_key for r in q.stuck_running(control_conn, hour)] == ["erp.public.r"]
    assert q.stuck_running(control_conn, timedelta(hours=3)) == []


def test_landing_pending_and_staging_processed(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    add_table("erp.public.never_loaded")
    assert q.landing_pending(control_conn) == []
    history_id = _run(control_conn)
    assert q.landing_pending(control_conn) == []  # not loaded yet
    succeed(control_conn, KEY, history_id, rows_read=1)
    assert [r.control_key for r in q.landing_pending(control_conn)] == [KEY]
    assert q.mark_staging_processed(control_conn, KEY)
    assert not q.mark_staging_processed(control_conn, KEY)
    assert q.landing_pending(control_conn) == []


def test_open_history_rows_and_close(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    (load,) = q.queue_ready_tables(control_conn, limit=1)
    assert [h.id for h in q.open_history_rows(control_conn)] == [load.history_id]
    assert q.close_history_row(control_conn, load.history_id, message="run vanished")
    assert not q.close_history_row(control_conn, load.history_id, message="again")
    assert q.open_history_rows(control_conn) == []


def test_table_status_view(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY)
    add_table("erp.public.idle", is_active=False)
    history_id = _run(control_conn)
    succeed(control_conn, KEY, history_id, rows_read=7, deletes_note="ok")
    idle, orders = q.table_status(control_conn)
    assert (idle.control_key, idle.is_active, idle.last_status, idle.last_load_end_time, idle.lag) == (
        "erp.public.idle",
        False,
        None,
        None,
        None,
    )
    assert (
        orders.db_config_key,
        orders.load_strategy,
        orders.last_status,
        orders.last_rows_processed,
        orders.last_status_message,
    ) == (
        "erp",
        "full",
        "Succeeded",
        7,
        "ok",
    )
    assert orders.last_load_start_time is not None and orders.last_load_end_time is not None
    assert orders.lag is not None and timedelta(0) <= orders.lag < timedelta(minutes=1)
    assert orders.next_load_date_time is not None and orders.retry_count == 0


def test_status_changed_at_follows_hand_edits(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY, last_status="Queued")
    control_conn.execute("UPDATE dataloader.table_control SET status_changed_at = now() - interval '2 hours'")
    assert [r.control_key for r in q.stuck_queued(control_conn, timedelta(hours=1))] == [KEY]
    control_conn.execute("UPDATE dataloader.table_control SET last_status = 'In Progress'")  # as at psql
    assert q.stuck_queued(control_conn, timedelta(hours=1)) == []
    assert q.stuck_running(control_conn, timedelta(hours=1)) == []
