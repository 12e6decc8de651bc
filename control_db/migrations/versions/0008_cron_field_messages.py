"""A refused cron says which field is wrong and why: `minute 61 is out of range 0-59`.

Until now every invalid cron was refused as "must be a 5-field cron expression", also one with five
fields and a minute of 61. `dataloader.cron_problem(expr)` names the field, the item and the rule
(out of range with the field's range, an unknown name, a reversed range, a step out of range, a
shape that is no cron item, or the number of fields). It accepts exactly what 0001's
`cron_is_valid` accepts (`tests/control_db/test_control_rules.py` compares the two), which stays
the gate for the other rules.

The refusal comes from a trigger that runs before 0001's `a_validate` (triggers of one event run in
name order), for `cron` and, when set, `delete_check_cron` (0004); the older generic refusals stay
as a fallback that no longer fires.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- NULL, or why one cron field is invalid, naming it: `minute 61 is out of range 0-59`. Items are
-- `*`, a value or a range a-b, optionally /step; values are numbers within lo..hi or three-letter
-- names (names[i] = base + i - 1).
CREATE FUNCTION dataloader.cron_field_problem(field text, label text, lo int, hi int, names text[], base int)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    item text;
    m text[];
    bounds text[];
    value_rule constant text := format('a number %s-%s', lo, hi)
        || CASE WHEN names IS NULL THEN '' ELSE format(' or a name %s-%s', names[1], names[cardinality(names)]) END;
    values int[];
BEGIN
    FOREACH item IN ARRAY string_to_array(upper(field), ',') LOOP
        m := regexp_match(item, '^(\*|([0-9]+|[A-Z]+)(-([0-9]+|[A-Z]+))?)(/([0-9]+))?$');
        IF m IS NULL THEN
            RETURN format('%s item %L is not *, %s, a range a-b, or one of those with /step',
                          label, item, value_rule);
        END IF;
        values := '{}';
        IF m[1] <> '*' THEN
            bounds := ARRAY[m[2]] || CASE WHEN m[4] IS NULL THEN '{}'::text[] ELSE ARRAY[m[4]] END;
            FOR i IN 1 .. cardinality(bounds) LOOP
                IF bounds[i] ~ '^[0-9]+$' THEN
                    IF length(bounds[i]) > 2 OR bounds[i]::int NOT BETWEEN lo AND hi THEN
                        RETURN format('%s %s is out of range %s-%s', label, bounds[i], lo, hi);
                    END IF;
                    values := values || bounds[i]::int;
                ELSIF array_position(names, bounds[i]) IS NULL THEN
                    RETURN format('%s %L is not %s', label, bounds[i], value_rule);
                ELSE
                    values := values || (array_position(names, bounds[i]) - 1 + base);
                END IF;
            END LOOP;
            IF cardinality(values) = 2 AND values[2] < values[1] THEN
                RETURN format('%s range %s runs backwards (from %s down to %s)', label, item, values[1], values[2]);
            END IF;
        END IF;
        IF m[6] IS NOT NULL AND (length(m[6]) > 2 OR m[6]::int NOT BETWEEN 1 AND hi) THEN
            RETURN format('%s step %s is out of range 1-%s', label, m[6], hi);
        END IF;
    END LOOP;
    RETURN NULL;
END $$;

-- NULL, or why `expr` is no valid 5-field cron expression (minute hour day-of-month month day-of-week).
CREATE FUNCTION dataloader.cron_problem(expr text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f text[];
BEGIN
    IF expr IS NULL THEN
        RETURN 'must be a 5-field cron expression (minute hour day-of-month month day-of-week) (got NULL)';
    END IF;
    f := regexp_split_to_array(btrim(expr), '\s+');
    IF btrim(expr) = '' OR array_length(f, 1) <> 5 THEN
        RETURN format('must be a 5-field cron expression (minute hour day-of-month month day-of-week), '
                      'not %s field(s) (got %L)', CASE WHEN btrim(expr) = '' THEN 0 ELSE array_length(f, 1) END,
                      expr);
    END IF;
    RETURN coalesce(
        dataloader.cron_field_problem(f[1], 'minute', 0, 59, NULL, 0),
        dataloader.cron_field_problem(f[2], 'hour', 0, 23, NULL, 0),
        dataloader.cron_field_problem(f[3], 'day-of-month', 1, 31, NULL, 0),
        dataloader.cron_field_problem(f[4], 'month', 1, 12,
            ARRAY['JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC'], 1),
        dataloader.cron_field_problem(f[5], 'day-of-week', 0, 7, ARRAY['SUN','MON','TUE','WED','THU','FRI','SAT'], 0)
    ) || format(' (got %L)', expr);
END $$;

CREATE FUNCTION dataloader.refuse_cron_problems() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP = 'INSERT' OR NEW.cron IS DISTINCT FROM OLD.cron THEN
        problem := dataloader.cron_problem(NEW.cron);
        IF problem IS NOT NULL THEN
            PERFORM dataloader.refuse(TG_TABLE_NAME, 'cron', problem);
        END IF;
    END IF;
    IF NEW.delete_check_cron IS NOT NULL
            AND (TG_OP = 'INSERT' OR NEW.delete_check_cron IS DISTINCT FROM OLD.delete_check_cron) THEN
        problem := dataloader.cron_problem(NEW.delete_check_cron);
        IF problem IS NOT NULL THEN
            PERFORM dataloader.refuse(TG_TABLE_NAME, 'delete_check_cron',
                                      'must be NULL (reconcile with every load) or a valid cron: ' || problem);
        END IF;
    END IF;
    RETURN NEW;
END $$;

-- `a0_…` sorts before `a_validate`, so this refusal is the one a bad cron gets.
CREATE TRIGGER a0_validate_cron BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.refuse_cron_problems();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a0_validate_cron ON dataloader.table_control;
DROP FUNCTION IF EXISTS dataloader.refuse_cron_problems();
DROP FUNCTION IF EXISTS dataloader.cron_problem(text);
DROP FUNCTION IF EXISTS dataloader.cron_field_problem(text, text, int, int, text[], int);
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
