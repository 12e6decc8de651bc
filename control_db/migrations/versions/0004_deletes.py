"""Deletes reach Delta and tables get maintained: the control columns both need.

`delete_mode` (none | soft | hard) says what a reconciliation does with rows the source no longer
has; `delete_check_cron` says when one runs (NULL = with every load); `last_delete_check_at` is when
the last one ran (set by mark_succeeded); `last_maintenance_at` is when `dataloader maintain` last
compacted and vacuumed the table. `historical_metadata.rows_deleted` is NULL when a load ran
no reconciliation. The rules live in their own trigger function, so this revision does not replace
0001's validate_table_control.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0004"
down_revision = "0003"

UPGRADE = r"""
ALTER TABLE dataloader.table_control
    ADD COLUMN delete_mode text NOT NULL DEFAULT 'none',
    ADD COLUMN delete_check_cron text,
    ADD COLUMN last_delete_check_at timestamptz,
    ADD COLUMN last_maintenance_at timestamptz,
    ADD CONSTRAINT ck_table_control_delete_mode CHECK (delete_mode IN ('none', 'soft', 'hard'));
ALTER TABLE dataloader.historical_metadata ADD COLUMN rows_deleted bigint;

CREATE FUNCTION dataloader.validate_table_control_deletes() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control';
BEGIN
    IF NEW.delete_mode IS NULL OR NEW.delete_mode NOT IN ('none', 'soft', 'hard') THEN
        PERFORM dataloader.refuse(t, 'delete_mode',
            format('must be one of none, soft, hard (got %L)', NEW.delete_mode));
    END IF;
    IF NEW.delete_mode <> 'none'
            AND (coalesce(cardinality(NEW.primary_keys), 0) = 0
                 OR array_position(NEW.primary_keys, NULL) IS NOT NULL
                 OR '' = ANY (NEW.primary_keys)) THEN
        PERFORM dataloader.refuse(t, 'primary_keys',
            format('required: a non-empty array of column names for delete_mode %s', NEW.delete_mode));
    END IF;
    IF NEW.delete_mode = 'soft' AND NEW.load_strategy IN ('full', 'rolling') THEN
        PERFORM dataloader.refuse(t, 'delete_mode', format('soft needs a strategy that keeps rows the source '
            'deleted (incremental, append_only, check_and_load, chunked_backfill); %s removes them',
            NEW.load_strategy));
    END IF;
    IF NEW.delete_check_cron IS NOT NULL
            AND (TG_OP = 'INSERT' OR NEW.delete_check_cron IS DISTINCT FROM OLD.delete_check_cron)
            AND NOT dataloader.cron_is_valid(NEW.delete_check_cron) THEN
        PERFORM dataloader.refuse(t, 'delete_check_cron', format('must be NULL (reconcile with every load) '
            'or a 5-field cron expression (minute hour day-of-month month day-of-week) (got %L)',
            NEW.delete_check_cron));
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_deletes BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control_deletes();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a_validate_deletes ON dataloader.table_control;
DROP FUNCTION IF EXISTS dataloader.validate_table_control_deletes();
ALTER TABLE dataloader.historical_metadata DROP COLUMN rows_deleted;
ALTER TABLE dataloader.table_control
    DROP COLUMN last_maintenance_at, DROP COLUMN last_delete_check_at, DROP COLUMN delete_check_cron, DROP COLUMN delete_mode;
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
