"""Table maintenance (compaction, vacuum) takes the row like a load does, so the two never race.

`claim_for_maintenance` moves a NULL/Succeeded row to In Progress in one guarded statement and
returns what it replaced; while it holds the row the master sensor does not queue it and a run
launched by hand refuses to start it. `release_maintenance` puts the row back exactly as it was
(guarded by the claim's token) and stamps `last_maintenance_at`. A maintenance process that dies
leaves the row In Progress: the reconcile monitor (Dagster run gone) or the longrunning monitor
(CLI, after its threshold) fails it, and the failed monitor's retry loads it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

from control_db.queries.reads import CONTROL_COLUMNS
from control_db.queries.rows import ControlRow


@dataclass(frozen=True)
class MaintenanceClaim:
    """A row held for maintenance: the token and the values the claim replaced."""

    control_key: str
    token: str
    last_status: str | None
    last_status_message: str | None
    status_changed_at: datetime | None
    last_run_id: str | None
    last_run_url: str | None

    @property
    def message(self) -> str:
        """The status message while the row is held (the release's guard)."""
        return f"maintenance {self.token}: compacting and vacuuming the Delta table"


_CLAIM = """
WITH old AS (
    SELECT control_key, last_status, last_status_message, status_changed_at, last_run_id, last_run_url
    FROM dataloader.table_control
    WHERE control_key = %(key)s AND (last_status IS NULL OR last_status = 'Succeeded')
    FOR UPDATE
),
held AS (
    UPDATE dataloader.table_control AS tc
    SET last_status = 'In Progress', status_changed_at = now(), last_status_message = %(message)s,
        last_run_id = %(run_id)s, last_run_url = %(run_url)s
    FROM old
    WHERE tc.control_key = old.control_key
    RETURNING tc.control_key
)
SELECT old.control_key, %(token)s AS token, old.last_status, old.last_status_message,
       old.status_changed_at, old.last_run_id, old.last_run_url
FROM old JOIN held USING (control_key)
"""


def claim_for_maintenance(
    conn: psycopg.Connection,
    control_key: str,
    *,
    token: str,
    run_id: str | None = None,
    run_url: str | None = None,
) -> MaintenanceClaim | None:
    """NULL/Succeeded -> In Progress for maintenance `token`; None when the row is busy, Failed or missing.

    `run_id` is the Dagster run doing the maintenance (None from the CLI), so the reconcile monitor
    can tell a live maintenance run from a dead one.
    """
    params = {
        "key": control_key,
        "token": token,
        "run_id": run_id,
        "run_url": run_url,
        "message": MaintenanceClaim(control_key, token, None, None, None, None, None).message,
    }
    with conn.transaction(), conn.cursor(row_factory=class_row(MaintenanceClaim)) as cur:
        return cur.execute(_CLAIM, params).fetchone()


_RELEASE = """
UPDATE dataloader.table_control
SET last_status = %(last_status)s, status_changed_at = %(status_changed_at)s,
    last_status_message = %(last_status_message)s, last_run_id = %(last_run_id)s,
    last_run_url = %(last_run_url)s,
    last_maintenance_at = CASE WHEN %(done)s THEN now() ELSE last_maintenance_at END
WHERE control_key = %(key)s AND last_status = 'In Progress' AND last_status_message = %(message)s
"""


def release_maintenance(conn: psycopg.Connection, claim: MaintenanceClaim, *, done: bool) -> bool:
    """Put the row back as the claim found it; `done` stamps `last_maintenance_at`. False when the
    row was taken from the claim meanwhile (e.g. failed by a monitor)."""
    params = {
        "key": claim.control_key,
        "message": claim.message,
        "last_status": claim.last_status,
        "status_changed_at": claim.status_changed_at,
        "last_status_message": claim.last_status_message,
        "last_run_id": claim.last_run_id,
        "last_run_url": claim.last_run_url,
        "done": done,
    }
    return conn.execute(_RELEASE, params).rowcount == 1


_DUE = """
SELECT tc.control_key
FROM dataloader.table_control AS tc
CROSS JOIN LATERAL (
    SELECT count(*) AS loads FROM (
        SELECT hm.load_status, hm.load_end_time FROM dataloader.historical_metadata AS hm
        WHERE hm.control_key = tc.control_key
        ORDER BY hm.id DESC
        LIMIT %(window)s
    ) AS recent
    WHERE recent.load_status = 'Succeeded'
      AND recent.load_end_time > coalesce(tc.last_maintenance_at, '-infinity'::timestamptz)
) AS since
WHERE tc.is_active AND tc.last_status = 'Succeeded' AND since.loads >= %(after_loads)s
ORDER BY tc.last_maintenance_at NULLS FIRST, tc.config_id
LIMIT %(limit)s
"""


def maintenance_due(conn: psycopg.Connection, *, after_loads: int, limit: int) -> list[str]:
    """Control keys of Succeeded rows with at least `after_loads` successful loads since their last
    maintenance, longest unmaintained first. Each row's count looks at its newest 3 x `after_loads`
    attempts only (an index range of `ix_historical_metadata_control_key_id`), so a tick stays cheap
    however long the history; a table whose loads fail that often is not maintained until they stop."""
    params = {"after_loads": after_loads, "window": 3 * after_loads, "limit": limit}
    return [row[0] for row in conn.execute(_DUE, params).fetchall()]


def active_control_rows(conn: psycopg.Connection) -> list[ControlRow]:
    """Every active control row, by config_id (what `dataloader maintain --all` goes through)."""
    sql = f"SELECT {CONTROL_COLUMNS} FROM dataloader.table_control AS tc WHERE tc.is_active ORDER BY tc.config_id"
    with conn.cursor(row_factory=class_row(ControlRow)) as cur:
        return cur.execute(sql).fetchall()
