"""Validation of source configs, names, lookbacks and crons at INSERT/UPDATE time.

- table_control_dbconfig: `db_config_value` holds the keys its `db_type` needs and only keys it
  takes (the table in `control_db/vocabulary.py`, rendered by `control_db/dbconfig_rules.py`), each
  value shaped for `db_kv_scope`; `db_config_key` has no control characters.
- table_control: keys, names and column names have no control characters (they reach generated
  files and messages), `incremental_lookback` is not negative, and `cron` fires at least once.

Each table gets a second BEFORE trigger (`a_validate_values`, run after `a_validate`), so 0001's
validating functions stay as they are. A value is checked when an INSERT or UPDATE sets it, so a
row stored before this revision keeps taking status updates; `dataloader validate` reports such
rows through the same functions (`table_control_value_problems`, `dbconfig_value_problems`).
Refusals are `<table>.<column>: <rule>` via `dataloader.refuse`. Literal-scope values are never
echoed: they may be secrets.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

from control_db.dbconfig_rules import render_rules_function
from control_db.migrations.sql_revision import sql_steps

revision = "0003"
down_revision = "0002"

HELPERS = r"""
-- NULL, or why `value` is not usable: the first control character (U+0001-U+001F, U+007F; text
-- cannot hold U+0000) and its position.
CREATE FUNCTION dataloader.control_character_problem(value text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    found text := substring(value from '[\x01-\x1f\x7f]');
BEGIN
    IF found IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN format('must not contain control characters (U+0000-U+001F, U+007F): U+%s at position %s',
                  lpad(upper(to_hex(ascii(found))), 4, '0'), strpos(value, found));
END $$;

-- The values one cron field selects (syntax already checked by dataloader.cron_field_is_valid).
CREATE FUNCTION dataloader.cron_field_values(field text, lo int, hi int, names text[], base int)
RETURNS int[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    item text;
    m text[];
    a int;
    b int;
    result int[] := '{}';
BEGIN
    FOREACH item IN ARRAY string_to_array(upper(field), ',') LOOP
        m := regexp_match(item, '^(\*|([0-9]{1,2}|[A-Z]{3})(-([0-9]{1,2}|[A-Z]{3}))?)(/([0-9]{1,2}))?$');
        IF m[1] = '*' THEN
            a := lo;
            b := hi;
        ELSE
            a := CASE WHEN m[2] ~ '^[0-9]+$' THEN m[2]::int ELSE array_position(names, m[2]) - 1 + base END;
            b := CASE
                WHEN m[4] IS NULL THEN CASE WHEN m[6] IS NULL THEN a ELSE hi END
                WHEN m[4] ~ '^[0-9]+$' THEN m[4]::int
                ELSE array_position(names, m[4]) - 1 + base END;
        END IF;
        result := result || ARRAY(SELECT generate_series(a, b, coalesce(m[6]::int, 1)));
    END LOOP;
    RETURN result;
END $$;

-- NULL, or why a valid 5-field cron never fires. Minute and hour always match some time; a day
-- matches when day-of-month OR day-of-week matches if both are restricted, so only a day-of-week
-- of `*` leaves the day of month alone to decide, and then some month must have that day
-- (February counts 29 days: `0 0 29 2 *` fires in leap years).
CREATE FUNCTION dataloader.cron_never_fires_problem(expr text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f text[] := regexp_split_to_array(btrim(expr), '\s+');
    month_days constant int[] := ARRAY[31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
BEGIN
    IF NOT '*' = ANY (string_to_array(f[5], ',')) THEN
        RETURN NULL;
    END IF;
    IF EXISTS (
        SELECT 1
        FROM unnest(dataloader.cron_field_values(f[4], 1, 12,
                 ARRAY['JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC'], 1)) AS month,
             unnest(dataloader.cron_field_values(f[3], 1, 31, NULL, 0)) AS day
        WHERE day <= month_days[month]
    ) THEN
        RETURN NULL;
    END IF;
    RETURN format('never fires: no month in %L has a day-of-month in %L', f[4], f[3]);
END $$;

-- NULL, or why `name` cannot be a secret reference for `scope` (env: an environment variable name;
-- file: a relative path under the secrets directory without ..).
CREATE FUNCTION dataloader.secret_name_problem(scope text, name text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF scope = 'env' AND name !~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN
        RETURN format('must name an environment variable (letters, digits and _, not starting with a '
                      'digit), as db_kv_scope is env (got %L)', name);
    END IF;
    IF scope = 'file' AND (name = '' OR name ~ '^/' OR name ~ '(^|/)\.\.(/|$)'
                           OR dataloader.control_character_problem(name) IS NOT NULL) THEN
        RETURN format('must name a file under DATALOADER_SECRETS_DIR: a relative path without .., '
                      'as db_kv_scope is file (got %L)', name);
    END IF;
    RETURN NULL;
END $$;

-- NULL, or why `value` is not a valid value of `kind` (see CONFIG_KEY_KINDS in
-- control_db/vocabulary.py; `option` is one value inside `options`) under `scope`.
CREATE FUNCTION dataloader.config_value_problem(kind text, scope text, value jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    type text := jsonb_typeof(value);
    port_rule constant text := 'must be an integer 1..65535';
BEGIN
    IF type = 'string' AND scope <> 'literal' AND kind <> 'object' THEN
        RETURN dataloader.secret_name_problem(scope, value #>> '{}');
    END IF;
    IF kind = 'text' THEN
        RETURN CASE WHEN type = 'string' THEN NULL ELSE 'must be a string' END;
    ELSIF kind = 'port' THEN
        IF type = 'number' AND (value #>> '{}') ~ '^[0-9]{1,5}$'
                AND (value #>> '{}')::int BETWEEN 1 AND 65535 THEN
            RETURN NULL;
        ELSIF type = 'string' AND (value #>> '{}') ~ '^\s*[0-9]{1,5}\s*$'
                AND btrim(value #>> '{}')::int BETWEEN 1 AND 65535 THEN
            RETURN NULL;
        END IF;
        RETURN CASE WHEN scope = 'literal' THEN port_rule
                    ELSE port_rule || ' or the name of a secret holding one' END;
    ELSIF kind = 'flag' THEN
        RETURN CASE WHEN type = 'boolean' THEN NULL
                    WHEN scope = 'literal' THEN 'must be true or false'
                    ELSE 'must be true, false or the name of a secret' END;
    ELSIF kind = 'object' THEN
        RETURN CASE WHEN type = 'object' THEN NULL ELSE 'must be a JSON object' END;
    ELSIF kind = 'option' THEN
        RETURN CASE WHEN type IN ('string', 'number', 'boolean') THEN NULL
                    ELSE 'must be a string, number or boolean' END;
    END IF;
    RETURN format('has unknown kind %L in dataloader.dbconfig_rules()', kind);
END $$;
"""

DBCONFIG_VALUE_PROBLEMS = r"""
-- Every problem of a dbconfig row with the values it sets: those that differ from `old_row` (NULL:
-- all of them). The trigger refuses the first; `dataloader validate` lists them for stored rows.
CREATE FUNCTION dataloader.dbconfig_value_problems(
    new_row dataloader.table_control_dbconfig, old_row dataloader.table_control_dbconfig
) RETURNS TABLE (column_name text, problem text) LANGUAGE plpgsql STABLE AS $$
DECLARE
    rules constant jsonb := dataloader.dbconfig_rules();
    keys constant jsonb := rules -> 'types' -> new_row.db_type;
    config constant jsonb := new_row.db_config_value;
    key text;
    value jsonb;
    option_name text;
    option_value jsonb;
BEGIN
    IF new_row.db_config_key IS DISTINCT FROM old_row.db_config_key THEN
        column_name := 'db_config_key';
        problem := dataloader.control_character_problem(new_row.db_config_key);
        IF problem IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END IF;
    IF keys IS NULL OR jsonb_typeof(config) IS DISTINCT FROM 'object'
            OR (new_row.db_type IS NOT DISTINCT FROM old_row.db_type
                AND new_row.db_kv_scope IS NOT DISTINCT FROM old_row.db_kv_scope
                AND config IS NOT DISTINCT FROM old_row.db_config_value) THEN
        RETURN;  -- an unknown db_type or a non-object is a_validate's to refuse; unchanged is fine
    END IF;
    column_name := 'db_config_value';
    FOR key IN SELECT jsonb_array_elements_text(keys -> 'required') LOOP
        IF coalesce(jsonb_typeof(config -> key), 'null') = 'null' THEN
            problem := format('key %L is required for db_type %s (required: %s)', key, new_row.db_type,
                (SELECT string_agg(k, ', ') FROM jsonb_array_elements_text(keys -> 'required') AS k));
            RETURN NEXT;
        END IF;
    END LOOP;
    FOR key, value IN SELECT * FROM jsonb_each(config) ORDER BY 1 LOOP
        IF NOT (keys -> 'allowed') ? key THEN
            problem := format('key %L is not a key of db_type %s (allowed: %s)', key, new_row.db_type,
                (SELECT string_agg(k, ', ') FROM jsonb_array_elements_text(keys -> 'allowed') AS k));
            RETURN NEXT;
            CONTINUE;
        END IF;
        CONTINUE WHEN jsonb_typeof(value) = 'null';  -- an optional key set to null is absent
        problem := 'key ' || quote_literal(key) || ' '
            || dataloader.config_value_problem(rules -> 'kinds' ->> key, new_row.db_kv_scope, value);
        IF problem IS NOT NULL THEN
            RETURN NEXT;
        END IF;
        CONTINUE WHEN jsonb_typeof(value) <> 'object';
        FOR option_name, option_value IN SELECT * FROM jsonb_each(value) ORDER BY 1 LOOP
            problem := 'key ' || quote_literal(key || '.' || option_name) || ' '
                || dataloader.config_value_problem('option', new_row.db_kv_scope, option_value);
            IF problem IS NOT NULL THEN
                RETURN NEXT;
            END IF;
        END LOOP;
    END LOOP;
END $$;

"""

TABLE_CONTROL_VALUE_PROBLEMS = r"""
-- Every problem of a control row with the values it sets: those that differ from `old_row` (NULL:
-- all of them), so a row stored before this revision keeps taking status updates. The trigger
-- refuses the first; `dataloader validate` lists them for stored rows.
CREATE FUNCTION dataloader.table_control_value_problems(
    new_row dataloader.table_control, old_row dataloader.table_control
) RETURNS TABLE (column_name text, problem text) LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
        SELECT f.name, dataloader.control_character_problem(f.value)
        FROM (VALUES
            ('control_key', new_row.control_key, old_row.control_key),
            ('db_config_key', new_row.db_config_key, old_row.db_config_key),
            ('source_schema', new_row.source_schema, old_row.source_schema),
            ('source_table', new_row.source_table, old_row.source_table),
            ('destination_table', new_row.destination_table, old_row.destination_table),
            ('incremental_column', new_row.incremental_column, old_row.incremental_column),
            ('rolling_column', new_row.rolling_column, old_row.rolling_column),
            ('chunk_column', new_row.chunk_column, old_row.chunk_column)) AS f(name, value, old_value)
        WHERE f.value IS DISTINCT FROM f.old_value AND dataloader.control_character_problem(f.value) IS NOT NULL
        UNION ALL
        SELECT 'primary_keys', dataloader.control_character_problem(k)
        FROM unnest(new_row.primary_keys) AS k
        WHERE new_row.primary_keys IS DISTINCT FROM old_row.primary_keys
          AND dataloader.control_character_problem(k) IS NOT NULL;
    -- A negative lookback moves the read start past the watermark: rows in between are never read.
    -- (a_validate has checked that it reads as an integer or an interval.)
    IF new_row.incremental_lookback IS DISTINCT FROM old_row.incremental_lookback
            AND dataloader.lookback_is_valid(new_row.incremental_lookback)
            AND (new_row.incremental_lookback LIKE '%-%'
                 OR (new_row.incremental_lookback !~ '^\s*[0-9]+\s*$'
                     AND new_row.incremental_lookback::interval < interval '0')) THEN
        column_name := 'incremental_lookback';
        problem := format('must not be negative: NULL, a non-negative integer or an interval such as '
                          '''2 hours'' (got %L)', new_row.incremental_lookback);
        RETURN NEXT;
    END IF;
    IF new_row.cron IS DISTINCT FROM old_row.cron AND dataloader.cron_is_valid(new_row.cron) THEN
        column_name := 'cron';
        problem := dataloader.cron_never_fires_problem(new_row.cron)
                   || ' (got ' || quote_literal(new_row.cron) || ')';
        IF problem IS NOT NULL THEN
            RETURN NEXT;
        END IF;
    END IF;
END $$;
"""

# One trigger function for both tables (PL/pgSQL compiles it per table, so NEW/OLD are typed).
REFUSE_FIRST_PROBLEM = r"""
CREATE FUNCTION dataloader.refuse_first_value_problem() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    first record;
BEGIN
    IF TG_TABLE_NAME = 'table_control' THEN
        SELECT * INTO first FROM dataloader.table_control_value_problems(NEW, OLD) LIMIT 1;
    ELSE
        SELECT * INTO first FROM dataloader.dbconfig_value_problems(NEW, OLD) LIMIT 1;
    END IF;
    IF first.column_name IS NOT NULL THEN
        PERFORM dataloader.refuse(TG_TABLE_NAME, first.column_name, first.problem);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_values BEFORE INSERT OR UPDATE ON dataloader.table_control_dbconfig
    FOR EACH ROW EXECUTE FUNCTION dataloader.refuse_first_value_problem();
CREATE TRIGGER a_validate_values BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.refuse_first_value_problem();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a_validate_values ON dataloader.table_control;
DROP TRIGGER IF EXISTS a_validate_values ON dataloader.table_control_dbconfig;
DROP FUNCTION IF EXISTS dataloader.refuse_first_value_problem();
DROP FUNCTION IF EXISTS dataloader.table_control_value_problems(dataloader.table_control, dataloader.table_control);
DROP FUNCTION IF EXISTS dataloader.dbconfig_value_problems(
    dataloader.table_control_dbconfig, dataloader.table_control_dbconfig);
DROP FUNCTION IF EXISTS dataloader.config_value_problem(text, text, jsonb);
DROP FUNCTION IF EXISTS dataloader.secret_name_problem(text, text);
DROP FUNCTION IF EXISTS dataloader.cron_never_fires_problem(text);
DROP FUNCTION IF EXISTS dataloader.cron_field_values(text, int, int, text[], int);
DROP FUNCTION IF EXISTS dataloader.control_character_problem(text);
DROP FUNCTION IF EXISTS dataloader.dbconfig_rules();
"""


upgrade, downgrade = sql_steps(
    (
        HELPERS,
        render_rules_function,
        DBCONFIG_VALUE_PROBLEMS,
        TABLE_CONTROL_VALUE_PROBLEMS,
        REFUSE_FIRST_PROBLEM,
    ),
    DOWNGRADE,
)
