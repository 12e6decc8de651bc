"""History (SCD type 2) per table: `table_control.history_mode`.

`history_mode` = `none` (default: the table holds the current version of each row) or `scd2`
(every change closes the current version and inserts the new one, with `_valid_from`, `_valid_to`
and `_is_current`; pipes_workers/lake/history.py). scd2 needs `primary_keys` and a strategy that
MERGEs changed rows on them: incremental, rolling, check_and_load (not yet cdc, whose change-log
MERGE keeps no history: refused until it does). The rules live in their
own trigger function, so this revision replaces no earlier validation function.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE dataloader.table_control
    ADD COLUMN history_mode text NOT NULL DEFAULT 'none',
    ADD CONSTRAINT ck_table_control_history_mode CHECK (history_mode IN ('none', 'scd2'));

CREATE FUNCTION dataloader.validate_table_control_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control';
BEGIN
    IF NEW.history_mode IS NULL OR NEW.history_mode NOT IN ('none', 'scd2') THEN
        PERFORM dataloader.refuse(t, 'history_mode',
            format('must be one of none, scd2 (got %L)', NEW.history_mode));
    END IF;
    IF NEW.history_mode = 'scd2'
            AND NEW.load_strategy NOT IN ('incremental', 'rolling', 'check_and_load') THEN
        PERFORM dataloader.refuse(t, 'history_mode', format('scd2 needs a strategy that merges changed rows '
            'on primary_keys (incremental, rolling, check_and_load), not %s', NEW.load_strategy));
    END IF;
    IF NEW.history_mode = 'scd2'
            AND (coalesce(cardinality(NEW.primary_keys), 0) = 0
                 OR array_position(NEW.primary_keys, NULL) IS NOT NULL
                 OR '' = ANY (NEW.primary_keys)) THEN
        PERFORM dataloader.refuse(t, 'primary_keys',
            'required: a non-empty array of column names for history_mode scd2');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_history BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control_history();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a_validate_history ON dataloader.table_control;
DROP FUNCTION IF EXISTS dataloader.validate_table_control_history();
ALTER TABLE dataloader.table_control DROP COLUMN history_mode;
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
