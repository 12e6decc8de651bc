"""destination_table names a folder of its own (migration 0006, issue 23): refused at INSERT/UPDATE
with `table_control.destination_table: <rule>` (SQLSTATE 23514) when a segment is Delta's or too
long for a file name, or when another row's folder is the same but for case, inside it or around it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from control_rows import insert_table

from control_db.queries.reads import stored_rule_problems

REFUSED = [
    ("the log folder", "bronze/n/_delta_log", r"segment _delta_log is reserved"),
    ("any _delta segment", "bronze/_delta_index/orders", r"segment _delta_index is reserved"),
    ("in another case", "bronze/_Delta_Log", r"segment _Delta_Log is reserved"),
    ("a first segment", "_delta_log", r"segment _delta_log is reserved"),
    (
        "a 256-byte segment",
        "bronze/" + "x" * 256,
        r"segment x{40}… is 256 bytes: a file name holds at most 255",
    ),
]


@pytest.mark.parametrize(("destination", "rule"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_a_reserved_or_overlong_segment_is_refused(
    control_conn: psycopg.Connection, destination: str, rule: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match=rf"^table_control\.destination_table: {rule}"):
        insert_table(control_conn, "erp.public.orders", destination_table=destination)
    insert_table(control_conn, "erp.public.orders", destination_table="bronze/orders")
    with pytest.raises(psycopg.errors.CheckViolation, match=rf"^table_control\.destination_table: {rule}"):
        control_conn.execute("UPDATE dataloader.table_control SET destination_table = %s", (destination,))


def test_names_that_only_look_close_are_accepted(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.a", destination_table="bronze/delta_log/" + "y" * 255)
    insert_table(control_conn, "erp.public.b", destination_table="bronze/x_delta/orders")
    insert_table(control_conn, "erp.public.c", destination_table="bronze/ord")
    insert_table(control_conn, "erp.public.d", destination_table="bronze/orders")  # `ord` is no folder of it
    insert_table(control_conn, "erp.public.e", destination_table="bronze/ord_x/y")
    count = control_conn.execute("SELECT count(*) FROM dataloader.table_control").fetchone()
    assert count == (5,)


COLLIDING = [
    ("the same but for case", "BRONZE/erp/Orders", "collides with erp.public.orders's destination_table"),
    ("inside it", "bronze/erp/orders/history", "overlaps erp.public.orders's destination_table"),
    ("inside it, in another case", "bronze/ERP/orders/x", "overlaps erp.public.orders's destination_table"),
    ("around it", "bronze/erp", "overlaps erp.public.orders's destination_table"),
]


@pytest.mark.parametrize(("destination", "rule"), [c[1:] for c in COLLIDING], ids=[c[0] for c in COLLIDING])
def test_another_rows_folder_is_refused(
    control_conn: psycopg.Connection, destination: str, rule: str
) -> None:
    insert_table(control_conn, "erp.public.orders", destination_table="bronze/erp/orders")
    with pytest.raises(psycopg.errors.CheckViolation, match=rf"^table_control\.destination_table: {rule}"):
        insert_table(control_conn, "erp.public.other", destination_table=destination)
    insert_table(control_conn, "erp.public.other", destination_table="bronze/erp_other")
    with pytest.raises(psycopg.errors.CheckViolation, match=rf"^table_control\.destination_table: {rule}"):
        control_conn.execute(
            "UPDATE dataloader.table_control SET destination_table = %s WHERE control_key = 'erp.public.other'",
            (destination,),
        )


def test_exact_duplicates_and_upserts_are_the_unique_constraints(control_conn: psycopg.Connection) -> None:
    insert_table(control_conn, "erp.public.orders", destination_table="bronze/erp/orders")
    with pytest.raises(psycopg.errors.UniqueViolation, match="uq_table_control_destination_table"):
        insert_table(control_conn, "erp.public.other", destination_table="bronze/erp/orders")
    # Re-running a seed (`ON CONFLICT (control_key) DO NOTHING`) meets its own row: not a collision.
    control_conn.execute(
        "INSERT INTO dataloader.table_control (control_key, db_config_key, source_table, destination_table, "
        "load_strategy, cron) VALUES ('erp.public.orders', 'erp', 'orders', 'bronze/erp/Orders', 'full', "
        "'0 * * * *') ON CONFLICT (control_key) DO NOTHING"
    )


@contextmanager
def destination_rules_disabled(conn: psycopg.Connection) -> Iterator[None]:
    """Store rows as a database from before migration 0006 could hold them."""
    conn.execute("ALTER TABLE dataloader.table_control DISABLE TRIGGER a_validate_destination")
    try:
        yield
    finally:
        conn.execute("ALTER TABLE dataloader.table_control ENABLE TRIGGER a_validate_destination")


def test_stored_rows_keep_taking_updates_and_validate_names_them(control_conn: psycopg.Connection) -> None:
    with destination_rules_disabled(control_conn):
        insert_table(control_conn, "erp.public.orders", destination_table="bronze/erp/orders")
        insert_table(control_conn, "erp.public.shout", destination_table="bronze/ERP/ORDERS")
        insert_table(control_conn, "erp.public.log", destination_table="bronze/erp/orders/_delta_log")
    control_conn.execute("UPDATE dataloader.table_control SET last_status = 'Queued', retry_count = 1")

    problems = stored_rule_problems(control_conn, ["erp.public.orders", "erp.public.shout", "erp.public.log"])

    assert problems["erp.public.shout"] == [
        "table_control.destination_table: collides with erp.public.orders's destination_table "
        "'bronze/erp/orders': the same folder but for case (one folder on a case-insensitive file "
        "system) (got 'bronze/ERP/ORDERS')"
    ]
    assert [p.split(":", 2)[1].strip() for p in problems["erp.public.log"]] == [
        "segment _delta_log is reserved",
        "overlaps erp.public.orders's destination_table 'bronze/erp/orders'",
    ]
    assert "collides with erp.public.shout's" in problems["erp.public.orders"][0]


def test_two_transactions_cannot_both_add_colliding_folders(
    control_conn: psycopg.Connection, control_db_url: str
) -> None:
    """Without the trigger's lock, each transaction's check misses the other's uncommitted row."""
    insert_table(control_conn, "erp.public.seed")  # the source row, committed
    outcome: list[BaseException | None] = []
    with psycopg.connect(control_db_url) as first, psycopg.connect(control_db_url) as second:
        insert_table(first, "erp.public.orders", destination_table="bronze/erp/orders")  # not committed

        def insert_second() -> None:
            try:
                insert_table(second, "erp.public.other", destination_table="bronze/ERP/orders")
                second.commit()
                outcome.append(None)
            except psycopg.Error as exc:
                outcome.append(exc)

        thread = threading.Thread(target=insert_second)
        thread.start()
        thread.join(timeout=1)
        assert thread.is_alive()  # waiting for the first transaction's lock
        first.commit()
        thread.join(timeout=10)
    assert len(outcome) == 1 and isinstance(outcome[0], psycopg.errors.CheckViolation), outcome
    assert "collides with erp.public.orders's destination_table" in str(outcome[0])
