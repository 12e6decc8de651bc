"""Migrations: up, no-op second up, down to base (nothing left), up again; schema.py matches the database."""

from __future__ import annotations

import psycopg
import pytest

from control_db import migrate, schema


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


@pytest.mark.parametrize("table", sorted(schema.metadata.tables.values(), key=lambda t: t.name), ids=str)
def test_schema_module_matches_migrated_database(control_conn: psycopg.Connection, table) -> None:
    expected = [(column.name, bool(column.nullable)) for column in table.columns]
    assert _columns(control_conn, table.name) == expected


def test_status_view_columns(control_conn: psycopg.Connection) -> None:
    assert (
        tuple(name for name, _ in _columns(control_conn, "v_table_status")) == schema.V_TABLE_STATUS_COLUMNS
    )


def test_version_table_lives_in_control_schema(control_conn: psycopg.Connection) -> None:
    row = control_conn.execute("SELECT to_regclass('dataloader.alembic_version') IS NOT NULL").fetchone()
    assert row == (True,)
