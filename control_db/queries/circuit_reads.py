"""What is read of the source circuits: states, probes, the source status view, audited transitions."""

from __future__ import annotations

import psycopg
from psycopg.rows import class_row

from control_db.queries.rows import CircuitChange, SourceStatus, column_list


def probes(conn: psycopg.Connection) -> dict[str, str]:
    """control_key -> source of every half-open circuit's probe (for the probe run's tag)."""
    rows = conn.execute(
        "SELECT probe_control_key, db_config_key FROM dataloader.source_circuit WHERE state = 'half_open'"
    ).fetchall()
    return dict(rows)


def source_status(conn: psycopg.Connection) -> list[SourceStatus]:
    """The rows of `dataloader.v_source_status`, by db_config_key."""
    with conn.cursor(row_factory=class_row(SourceStatus)) as cur:
        return cur.execute(
            f"SELECT {column_list(SourceStatus, 'v')} FROM dataloader.v_source_status AS v ORDER BY 1"
        ).fetchall()


def circuit_changes(conn: psycopg.Connection, *, after_id: int = 0, limit: int = 500) -> list[CircuitChange]:
    """Audited transitions with id > `after_id`, oldest first (the circuit sensor's cursor)."""
    with conn.cursor(row_factory=class_row(CircuitChange)) as cur:
        return cur.execute(
            f"SELECT {column_list(CircuitChange, 'h')} FROM dataloader.source_circuit_history AS h "
            "WHERE h.id > %s ORDER BY h.id LIMIT %s",
            (after_id, limit),
        ).fetchall()
