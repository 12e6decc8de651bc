"""An operator opens or closes a source's circuit (the Launchpad's circuit jobs, `dataloader circuit`),
through the same locked transition as the breaker itself (control_db.queries.circuit)."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from control_db.queries.circuit import OPEN, _close, _locked, _write, release_failed_rows


def _known_source(conn: psycopg.Connection, db_config_key: str) -> None:
    if (
        conn.execute(
            "SELECT 1 FROM dataloader.table_control_dbconfig WHERE db_config_key = %s", (db_config_key,)
        ).fetchone()
        is None
    ):
        raise ValueError(f"no source with db_config_key {db_config_key!r}")


def open_by_hand(
    conn: psycopg.Connection, db_config_key: str, reason: str, cooldown_s: int | None = None
) -> str:
    """An operator opens the source's circuit (e.g. its planned maintenance): its tables are held back
    for `cooldown_s` (default its `breaker_cooldown_s`), then one probe as after any opening.
    Raises ValueError for an unknown source."""
    _known_source(conn, db_config_key)
    with conn.transaction():
        circuit, settings, now = _locked(conn, db_config_key)
        cooldown = cooldown_s or settings[3]
        state = _write(
            conn, circuit, state=OPEN, opened_at=now, cooldown_s=cooldown,
            open_until=now + timedelta(seconds=cooldown), probe=None, reason=reason,
        )  # fmt: skip
    release_failed_rows(conn, db_config_key)
    return state


def close_by_hand(conn: psycopg.Connection, db_config_key: str, reason: str) -> str:
    """An operator closes the source's circuit (the source is known to be back): its tables load when
    due. Raises ValueError for an unknown source."""
    _known_source(conn, db_config_key)
    with conn.transaction():
        circuit, _, _ = _locked(conn, db_config_key)
        return _close(conn, circuit, reason)
