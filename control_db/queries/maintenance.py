"""Table maintenance (compaction, vacuum) holds a row with a claim of its own, so it never races a load.

The claim is two columns of `table_control` (migration 0007): `maintenance_owner` and
`maintenance_expires_at`. `claim_maintenance` sets them on a NULL/Succeeded row that no live claim
holds; a load is not queued while a live claim holds the row (`reads.READY`, `queue_by_hand`). Both
are guarded UPDATEs of the same row, so the later one sees the earlier one's commit. The load
status is never touched: a maintenance run leaves no `In Progress` behind. A claim past its expiry,
or one whose owner the caller knows is gone (`take_over`), is taken over by the next claimant.
The lifecycle around these is `control_db.maintenance_lifecycle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row

from control_db.queries.reads import CONTROL_COLUMNS, NOT_HELD
from control_db.queries.rows import ControlRow


@dataclass(frozen=True)
class MaintenanceClaim:
    """A row held for maintenance by `owner` until `expires_at`; `took_over` names the owner of an
    expired or gone claim this one replaced."""

    control_key: str
    owner: str
    expires_at: datetime
    took_over: str | None = None


_CLAIM = f"""
WITH old AS (
    SELECT tc.control_key, tc.maintenance_owner
    FROM dataloader.table_control AS tc
    WHERE tc.control_key = %(key)s AND (tc.last_status IS NULL OR tc.last_status = 'Succeeded')
      AND ({NOT_HELD} OR tc.maintenance_owner IN (%(owner)s, %(take_over)s))
    FOR UPDATE
),
held AS (
    UPDATE dataloader.table_control AS tc
    SET maintenance_owner = %(owner)s, maintenance_expires_at = now() + %(ttl)s
    FROM old
    WHERE tc.control_key = old.control_key
    RETURNING tc.control_key, tc.maintenance_owner AS owner, tc.maintenance_expires_at AS expires_at
)
SELECT held.control_key, held.owner, held.expires_at,
       nullif(old.maintenance_owner, %(owner)s) AS took_over
FROM held JOIN old USING (control_key)
"""


def claim_maintenance(
    conn: psycopg.Connection,
    control_key: str,
    *,
    owner: str,
    ttl: timedelta,
    take_over: str | None = None,
) -> MaintenanceClaim | None:
    """Hold a NULL/Succeeded row for `owner` until now + `ttl` (an owner's own claim is renewed);
    None when the row is missing, not NULL/Succeeded, or held by a live claim of another owner than
    `take_over` (an owner the caller knows is gone).
    """
    params = {"key": control_key, "owner": owner, "ttl": ttl, "take_over": take_over}
    with conn.transaction(), conn.cursor(row_factory=class_row(MaintenanceClaim)) as cur:
        return cur.execute(_CLAIM, params).fetchone()


_RELEASE = """
UPDATE dataloader.table_control
SET maintenance_owner = NULL, maintenance_expires_at = NULL,
    last_maintenance_at = CASE WHEN %(done)s THEN now() ELSE last_maintenance_at END
WHERE control_key = %(key)s AND maintenance_owner = %(owner)s
"""


def release_maintenance(conn: psycopg.Connection, claim: MaintenanceClaim, *, done: bool) -> bool:
    """Drop the claim; `done` stamps `last_maintenance_at`. False when the claim was taken over meanwhile."""
    params = {"key": claim.control_key, "owner": claim.owner, "done": done}
    return conn.execute(_RELEASE, params).rowcount == 1


def maintenance_claims(conn: psycopg.Connection) -> list[MaintenanceClaim]:
    """Every live claim, by control_key."""
    sql = (
        "SELECT tc.control_key, tc.maintenance_owner AS owner, tc.maintenance_expires_at AS expires_at "
        f"FROM dataloader.table_control AS tc WHERE NOT {NOT_HELD} ORDER BY tc.control_key"
    )
    with conn.cursor(row_factory=class_row(MaintenanceClaim)) as cur:
        return cur.execute(sql).fetchall()


_DUE = f"""
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
WHERE tc.is_active AND tc.last_status = 'Succeeded' AND since.loads >= %(after_loads)s AND {NOT_HELD}
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
