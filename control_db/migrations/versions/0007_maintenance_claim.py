"""Maintenance holds a table with a claim of its own, not the load status.

Until 0006 `dataloader maintain` and the maintenance job moved the row to `In Progress` with a
message naming their token and put it back by matching that message. Now a claim is two columns:
`maintenance_owner` (who holds the table: `run:<dagster run id>` or a `local-…` process id, see
`control_db.local_runs`) and `maintenance_expires_at` (after which anyone may take it over). Both
are set or both NULL. A load is not queued while a claim is live, and a claim is taken only on a
row that is NULL/Succeeded, both as guarded UPDATEs of the same row, so the two never overlap.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0007"
down_revision = "0006"

UPGRADE = r"""
ALTER TABLE dataloader.table_control
    ADD COLUMN maintenance_owner text,
    ADD COLUMN maintenance_expires_at timestamptz,
    ADD CONSTRAINT ck_table_control_maintenance_claim
        CHECK ((maintenance_owner IS NULL) = (maintenance_expires_at IS NULL));
"""

DOWNGRADE = r"""
ALTER TABLE dataloader.table_control
    DROP CONSTRAINT IF EXISTS ck_table_control_maintenance_claim,
    DROP COLUMN IF EXISTS maintenance_expires_at,
    DROP COLUMN IF EXISTS maintenance_owner;
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
