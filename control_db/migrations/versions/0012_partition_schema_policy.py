"""What a table looks like in the lake: its Delta partitioning and how it follows source schema changes.

- `partition_by` text[] (NULL or empty = unpartitioned): the Delta partition columns, in order. Each
  entry is a source column name, or `day(col)` / `month(col)` / `year(col)` of a timestamp or date
  column, stored as the generated partition column `_part_day_<col>` ('YYYY-MM-DD'),
  `_part_month_<col>` ('YYYY-MM') or `_part_year_<col>` ('YYYY'). Changing it on a table that already
  exists takes a `load_full` (the worker refuses otherwise).
- `schema_policy` (evolve | freeze | discard_new, default evolve): evolve adds new source columns and
  widens safe type changes; freeze fails the load on any column change; discard_new does not write
  new source columns (the schema-drift check reports them).

The rules live in their own trigger function, so this revision does not replace 0001's
validate_table_control.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE dataloader.table_control
    ADD COLUMN partition_by text[],
    ADD COLUMN schema_policy text NOT NULL DEFAULT 'evolve',
    ADD CONSTRAINT ck_table_control_schema_policy CHECK (schema_policy IN ('evolve', 'freeze', 'discard_new'));

CREATE FUNCTION dataloader.validate_table_control_layout() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control';
    entry text;
    target text;
    seen text[] := '{}';
BEGIN
    IF NEW.schema_policy IS NULL OR NEW.schema_policy NOT IN ('evolve', 'freeze', 'discard_new') THEN
        PERFORM dataloader.refuse(t, 'schema_policy',
            format('must be one of evolve, freeze, discard_new (got %L)', NEW.schema_policy));
    END IF;
    IF NEW.partition_by IS NOT NULL THEN
        IF array_ndims(NEW.partition_by) > 1 THEN
            PERFORM dataloader.refuse(t, 'partition_by', 'must be a one-dimensional array of column names');
        END IF;
        FOREACH entry IN ARRAY NEW.partition_by LOOP
            IF entry IS NULL OR btrim(entry) = '' THEN
                PERFORM dataloader.refuse(t, 'partition_by', format('holds an empty or NULL entry (got %L); '
                    'each entry is a column name or day(col) / month(col) / year(col)', NEW.partition_by));
            END IF;
            target := entry;  -- a column name is compared as written: "Region" and "region" differ
            IF entry ~* '^\s*(day|month|year)\s*\(.*\)\s*$' THEN
                target := lower(substring(entry from '^\s*(\w+)')) || '('
                    || btrim(substring(entry from '\((.*)\)\s*$')) || ')';
                IF target ~ '\(\)$' THEN
                    PERFORM dataloader.refuse(t, 'partition_by',
                        format('%L names no column inside the parentheses', entry));
                END IF;
            ELSIF entry ~ '\(' OR entry ~ '\)' THEN
                PERFORM dataloader.refuse(t, 'partition_by', format('%L is neither a column name nor '
                    'day(col) / month(col) / year(col)', entry));
            END IF;
            IF target = ANY (seen) THEN
                PERFORM dataloader.refuse(t, 'partition_by', format('lists %L twice', entry));
            END IF;
            seen := seen || target;
        END LOOP;
        IF cardinality(NEW.partition_by) > 4 THEN
            PERFORM dataloader.refuse(t, 'partition_by', format('at most 4 partition columns (got %s): '
                'every combination of values is a directory of small files', cardinality(NEW.partition_by)));
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_layout BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control_layout();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a_validate_layout ON dataloader.table_control;
DROP FUNCTION IF EXISTS dataloader.validate_table_control_layout();
ALTER TABLE dataloader.table_control
    DROP CONSTRAINT IF EXISTS ck_table_control_schema_policy,
    DROP COLUMN schema_policy, DROP COLUMN partition_by;
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
