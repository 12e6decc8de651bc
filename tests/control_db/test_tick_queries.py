"""What a master/monitor tick asks the control database: active keys, and queuing that locks only what it picks."""

from __future__ import annotations

from dataclasses import fields

import psycopg
import pytest
from control_rows import AddTable

from control_db import queries as q


def test_active_control_keys_lists_active_rows_only(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table("erp.public.orders")
    add_table("erp.public.archive", is_active=False)
    add_table("erp.public.customers", last_status="Failed")
    assert q.active_control_keys(control_conn) == ["erp.public.customers", "erp.public.orders"]


def test_queue_locks_only_the_rows_it_picks(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    for n in range(20):
        add_table(f"erp.public.t{n:02d}")
    with control_conn.transaction():
        (picked,) = q.queue_ready_tables(control_conn, limit=1)
        with psycopg.connect(control_db_url, autocommit=True) as other:
            other.execute("SET lock_timeout = '2s'")
            unpicked = other.execute(
                "SELECT control_key FROM dataloader.table_control WHERE control_key <> %s "
                "ORDER BY control_key FOR UPDATE NOWAIT",
                (picked.control_key,),
            ).fetchall()
            assert len(unpicked) == 19
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(
                    "SELECT 1 FROM dataloader.table_control WHERE control_key = %s FOR UPDATE NOWAIT",
                    (picked.control_key,),
                )
    # Once the queuing transaction commits, a second tick picks the next row.
    (second,) = q.queue_ready_tables(control_conn, limit=1)
    assert second.control_key != picked.control_key


def test_status_view_columns_are_named_as_the_columns_they_show() -> None:
    control = {field.name for field in fields(q.ControlRow)}
    history = {f"last_{field.name}" for field in fields(q.HistoryRow)}
    computed = {"lag", "circuit"}  # now() - the last successful load's end; the source circuit's state
    shown = [field.name for field in fields(q.TableStatus)]
    assert [name for name in shown if name not in control | history | computed] == []


def test_rows_someone_holds_locked_are_passed_over_not_waited_for(
    control_conn: psycopg.Connection, control_db_url: str, add_table: AddTable
) -> None:
    for n in range(5):
        add_table(f"erp.public.t{n}")
    with psycopg.connect(control_db_url) as person:  # an open transaction editing the two oldest rows
        person.execute(
            "SELECT 1 FROM dataloader.table_control WHERE control_key IN ('erp.public.t0', 'erp.public.t1') "
            "FOR UPDATE"
        )
        queued = [load.control_key for load in q.queue_ready_tables(control_conn, limit=2)]
        person.rollback()
    assert queued == ["erp.public.t2", "erp.public.t3"]  # the tick still fills its batch
