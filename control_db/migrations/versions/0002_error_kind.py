"""Structured errors: the kind and code of a load's failure, on the row and on its history.

The retry analysis decides from `last_error_kind` (transient | permanent | configuration) and
`last_error_code` (SQLSTATE, driver errno, or one of ours such as `worker_killed`), never by
parsing `last_status_message`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0002"
down_revision = "0001"

UPGRADE = r"""
ALTER TABLE dataloader.table_control
    ADD COLUMN last_error_kind text,
    ADD COLUMN last_error_code text,
    ADD CONSTRAINT ck_table_control_last_error_kind CHECK (last_error_kind IS NULL OR last_error_kind IN
        ('transient', 'permanent', 'configuration'));
ALTER TABLE dataloader.historical_metadata
    ADD COLUMN error_kind text,
    ADD COLUMN error_code text,
    ADD CONSTRAINT ck_historical_metadata_error_kind CHECK (error_kind IS NULL OR error_kind IN
        ('transient', 'permanent', 'configuration'));
"""

DOWNGRADE = r"""
ALTER TABLE dataloader.historical_metadata DROP COLUMN error_code, DROP COLUMN error_kind;
ALTER TABLE dataloader.table_control DROP COLUMN last_error_code, DROP COLUMN last_error_kind;
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
