"""The history trigger: every INSERT/UPDATE/DELETE on table_control, with who did it; no-op UPDATEs skipped."""

from __future__ import annotations

import psycopg
from control_rows import insert_table


def _history(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT control_key, change_type, change_source, old_values, new_values, changed_at "
        "FROM dataloader.table_control_history ORDER BY id"
    ).fetchall()


def test_insert_update_delete_are_recorded(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders")
    control_conn.execute("UPDATE dataloader.table_control SET is_active = false")
    control_conn.execute("DELETE FROM dataloader.table_control")

    (insert, update, delete) = _history(control_conn)
    assert insert[:3] == ("erp.public.orders", "INSERT", "dataloader-tests")
    assert insert[3] is None and insert[4]["is_active"] is True
    assert update[1] == "UPDATE"
    assert update[3]["is_active"] is True and update[4]["is_active"] is False
    assert delete[1] == "DELETE" and delete[3]["is_active"] is False and delete[4] is None
    assert insert[5] <= update[5] <= delete[5]


def test_update_that_changes_nothing_is_not_recorded(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders")
    control_conn.execute("UPDATE dataloader.table_control SET is_active = is_active, cron = cron")
    control_conn.execute("UPDATE dataloader.table_control SET updated_at = now() - interval '1 day'")
    assert [row[1] for row in _history(control_conn)] == ["INSERT"]


def test_change_source_is_the_application_name(control_conn: psycopg.Connection, control_db_url: str) -> None:
    insert_table(control_conn, "erp.public.orders")
    with psycopg.connect(control_db_url, autocommit=True, application_name="psql") as person:
        person.execute("UPDATE dataloader.table_control SET is_active = false")
    with psycopg.connect(control_db_url, autocommit=True) as anonymous:
        anonymous.execute("SET application_name = ''")
        anonymous.execute("UPDATE dataloader.table_control SET is_active = true")
    assert [row[2] for row in _history(control_conn)] == ["dataloader-tests", "psql", "unknown"]
