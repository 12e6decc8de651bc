"""Migrations: up, no-op second up, down to base (nothing left), up again; the row dataclasses of
`control_db.queries.rows` (the schema's one declaration) match the migrated database."""

from __future__ import annotations

import typing
from dataclasses import fields

import psycopg
import pytest

from control_db import migrate
from control_db.queries.rows import TABLE_ROWS, VIEW_ROWS


def _objects(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """
            SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'dataloader'),
                   (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'dataloader'),
                   (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                    WHERE n.nspname = 'dataloader')
            """
        ).fetchone()
    assert row is not None
    return {"schemas": row[0], "relations": row[1], "functions": row[2]}


def test_up_noop_down_up(fresh_database: str) -> None:
    assert migrate.current_revision(fresh_database) is None
    migrate.upgrade(fresh_database)
    assert migrate.current_revision(fresh_database) == migrate.head_revision()
    after_first = _objects(fresh_database)
    assert after_first["schemas"] == 1 and after_first["functions"] > 0

    migrate.upgrade(fresh_database)  # second upgrade: nothing to do
    assert _objects(fresh_database) == after_first

    migrate.downgrade(fresh_database, "base")
    assert migrate.current_revision(fresh_database) is None
    assert _objects(fresh_database) == {"schemas": 0, "relations": 0, "functions": 0}

    migrate.upgrade(fresh_database)
    assert _objects(fresh_database) == after_first


def _columns(conn: psycopg.Connection, table: str) -> list[tuple[str, bool]]:
    rows = conn.execute(
        "SELECT column_name, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = 'dataloader' AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [(name, nullable) for name, nullable in rows]


def _declared(row_type: type) -> list[tuple[str, bool]]:
    """(name, nullable) per field: nullable when its type admits None."""
    hints = typing.get_type_hints(row_type)
    return [(f.name, type(None) in typing.get_args(hints[f.name])) for f in fields(row_type)]


@pytest.mark.parametrize("table", sorted(TABLE_ROWS))
def test_row_types_match_migrated_tables(control_conn: psycopg.Connection, table: str) -> None:
    assert _columns(control_conn, table) == _declared(TABLE_ROWS[table])


def test_declared_tables_are_all_the_tables(control_conn: psycopg.Connection) -> None:
    rows = control_conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dataloader' "
        "AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version'"
    ).fetchall()
    assert sorted(name for (name,) in rows) == sorted(TABLE_ROWS)


def test_status_view_columns(control_conn: psycopg.Connection) -> None:
    for view, row_type in VIEW_ROWS.items():
        assert [name for name, _ in _columns(control_conn, view)] == [f.name for f in fields(row_type)]


def test_version_table_lives_in_control_schema(control_conn: psycopg.Connection) -> None:
    row = control_conn.execute("SELECT to_regclass('dataloader.alembic_version') IS NOT NULL").fetchone()
    assert row == (True,)
