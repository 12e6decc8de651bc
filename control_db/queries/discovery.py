"""What `dataloader discover` needs from the control database: the names already taken by a
source's tables, and applying its INSERT statements in one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class TakenNames:
    """Source tables already registered for one db_config_key, and every control key and
    destination folder in use."""

    registered: frozenset[tuple[str | None, str]]
    control_keys: frozenset[str]
    destinations: frozenset[str]


def taken_names(conn: psycopg.Connection, db_config_key: str) -> TakenNames:
    """The names a new row for `db_config_key` must not reuse."""
    rows = conn.execute(
        "SELECT db_config_key, source_schema, source_table, control_key, destination_table "
        "FROM dataloader.table_control"
    ).fetchall()
    return TakenNames(
        frozenset((schema, table) for key, schema, table, _, _ in rows if key == db_config_key),
        frozenset(r[3] for r in rows),
        frozenset(r[4] for r in rows),
    )


def source_exists(conn: psycopg.Connection, db_config_key: str) -> bool:
    """True when table_control_dbconfig has the row."""
    return (
        conn.execute(
            "SELECT 1 FROM dataloader.table_control_dbconfig WHERE db_config_key = %s", (db_config_key,)
        ).fetchone()
        is not None
    )


def apply_statements(conn: psycopg.Connection, statements: Sequence[str]) -> None:
    """Run `statements` in one transaction: all of them land, or (on the first refusal) none."""
    with conn.transaction():
        for statement in statements:
            conn.execute(statement.encode())
