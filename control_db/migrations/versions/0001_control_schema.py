"""Control schema: tables, validating triggers, history trigger, v_table_status.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0001"
down_revision = None

TABLES = r"""
CREATE TABLE dataloader.table_control_dbconfig (
    db_config_key   text PRIMARY KEY,
    db_type         text NOT NULL,
    db_config_value jsonb NOT NULL DEFAULT '{}'::jsonb,
    db_kv_scope     text NOT NULL DEFAULT 'env',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_table_control_dbconfig_db_type CHECK (db_type IN
        ('postgresql', 'mysql', 'mariadb', 'sqlite', 'mssql', 'oracle', 'snowflake', 'clickhouse')),
    CONSTRAINT ck_table_control_dbconfig_db_kv_scope CHECK (db_kv_scope IN ('env', 'file', 'literal'))
);

CREATE TABLE dataloader.table_control (
    config_id               serial PRIMARY KEY,
    control_key             text NOT NULL,
    db_config_key           text NOT NULL REFERENCES dataloader.table_control_dbconfig (db_config_key)
                                ON UPDATE CASCADE,
    source_schema           text,
    source_table            text NOT NULL,
    destination_table       text NOT NULL,
    load_strategy           text NOT NULL,
    cron                    text NOT NULL,
    cron_timezone           text NOT NULL DEFAULT 'UTC',
    is_active               boolean NOT NULL DEFAULT true,
    primary_keys            text[],
    incremental_column      text,
    incremental_value       text,
    incremental_lookback    text,
    load_full               boolean NOT NULL DEFAULT false,
    rolling_column          text,
    rolling_window_days     integer,
    chunk_column            text,
    chunk_size              bigint,
    next_load_date_time     timestamptz,
    last_status             text,
    last_status_message     text,
    status_changed_at       timestamptz,
    last_run_id             text,
    last_run_url            text,
    last_rows_processed     bigint,
    retry_count             integer NOT NULL DEFAULT 0,
    max_retries             integer NOT NULL DEFAULT 3,
    manual_review           boolean NOT NULL DEFAULT false,
    manual_review_reason    text,
    staging_model_processed boolean NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT uq_table_control_control_key UNIQUE (control_key),
    CONSTRAINT uq_table_control_destination_table UNIQUE (destination_table),
    CONSTRAINT ck_table_control_load_strategy CHECK (load_strategy IN
        ('full', 'incremental', 'append_only', 'rolling', 'check_and_load', 'chunked_backfill')),
    CONSTRAINT ck_table_control_last_status CHECK (last_status IS NULL OR last_status IN
        ('Queued', 'In Progress', 'Succeeded', 'Failed')),
    CONSTRAINT ck_table_control_max_retries CHECK (max_retries >= 0),
    CONSTRAINT ck_table_control_retry_count CHECK (retry_count >= 0)
);
CREATE INDEX ix_table_control_last_status ON dataloader.table_control (last_status);

CREATE TABLE dataloader.historical_metadata (
    id               bigserial PRIMARY KEY,
    control_key      text NOT NULL,
    config_id        integer,
    run_id           text,
    load_strategy    text,
    load_queued_time timestamptz,
    load_start_time  timestamptz,
    load_end_time    timestamptz,
    rows_processed   bigint,
    load_status      text NOT NULL,
    watermark_before text,
    watermark_after  text,
    error_message    text,
    retry_decision   text,
    retry_reason     text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_historical_metadata_load_status CHECK (load_status IN
        ('Queued', 'In Progress', 'Succeeded', 'Failed')),
    CONSTRAINT ck_historical_metadata_retry_decision CHECK (retry_decision IS NULL OR retry_decision IN
        ('retry', 'manual_review'))
);
CREATE INDEX ix_historical_metadata_control_key_id ON dataloader.historical_metadata (control_key, id);

CREATE TABLE dataloader.table_control_history (
    id            bigserial PRIMARY KEY,
    control_key   text NOT NULL,
    config_id     integer,
    changed_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    change_type   text NOT NULL,
    change_source text NOT NULL,
    old_values    jsonb,
    new_values    jsonb,
    CONSTRAINT ck_table_control_history_change_type CHECK (change_type IN ('INSERT', 'UPDATE', 'DELETE'))
);
CREATE INDEX ix_table_control_history_control_key_changed_at
    ON dataloader.table_control_history (control_key, changed_at);
"""

# Helpers the validating triggers call. Every refusal is `<table>.<column>: <rule>` with SQLSTATE
# check_violation (23514) and the table/column in the error's diagnostics fields.
RULE_HELPERS = r"""
CREATE FUNCTION dataloader.refuse(tbl text, col text, rule text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%.%: %', tbl, col, rule
        USING ERRCODE = 'check_violation', SCHEMA = 'dataloader', TABLE = tbl, COLUMN = col;
END $$;

-- One cron field: comma-separated items, each `*` or a value or a range `a-b`, optionally `/step`;
-- values are numbers within lo..hi or three-letter names (names[i] = base + i - 1).
CREATE FUNCTION dataloader.cron_field_is_valid(field text, lo int, hi int, names text[], base int)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    item text;
    m text[];
    a int;
    b int;
BEGIN
    IF field IS NULL OR field = '' THEN
        RETURN false;
    END IF;
    FOREACH item IN ARRAY string_to_array(upper(field), ',') LOOP
        m := regexp_match(item, '^(\*|([0-9]{1,2}|[A-Z]{3})(-([0-9]{1,2}|[A-Z]{3}))?)(/([0-9]{1,2}))?$');
        IF m IS NULL THEN
            RETURN false;
        END IF;
        IF m[1] <> '*' THEN
            a := CASE WHEN m[2] ~ '^[0-9]+$' THEN m[2]::int ELSE array_position(names, m[2]) - 1 + base END;
            IF a IS NULL OR a < lo OR a > hi THEN
                RETURN false;
            END IF;
            IF m[4] IS NOT NULL THEN
                b := CASE WHEN m[4] ~ '^[0-9]+$' THEN m[4]::int ELSE array_position(names, m[4]) - 1 + base END;
                IF b IS NULL OR b < a OR b > hi THEN
                    RETURN false;
                END IF;
            END IF;
        END IF;
        IF m[6] IS NOT NULL AND (m[6]::int < 1 OR m[6]::int > hi) THEN
            RETURN false;
        END IF;
    END LOOP;
    RETURN true;
END $$;

-- A 5-field cron expression: minute hour day-of-month month day-of-week.
CREATE FUNCTION dataloader.cron_is_valid(expr text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    f text[];
BEGIN
    IF expr IS NULL THEN
        RETURN false;
    END IF;
    f := regexp_split_to_array(btrim(expr), '\s+');
    IF array_length(f, 1) <> 5 THEN
        RETURN false;
    END IF;
    RETURN dataloader.cron_field_is_valid(f[1], 0, 59, NULL, 0)
       AND dataloader.cron_field_is_valid(f[2], 0, 23, NULL, 0)
       AND dataloader.cron_field_is_valid(f[3], 1, 31, NULL, 0)
       AND dataloader.cron_field_is_valid(f[4], 1, 12,
             ARRAY['JAN','FEB','MAR','APR','MAY','JUN','JUL','AUG','SEP','OCT','NOV','DEC'], 1)
       AND dataloader.cron_field_is_valid(f[5], 0, 7, ARRAY['SUN','MON','TUE','WED','THU','FRI','SAT'], 0);
END $$;

CREATE FUNCTION dataloader.timezone_is_valid(tz text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    -- pg_timezone_names reads every zone file (~50 ms): answer the default without it.
    SELECT tz IS NOT NULL AND (tz = 'UTC' OR EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz))
$$;

-- NULL, a non-negative integer, or anything PostgreSQL reads as an interval ('2 hours', '1 day').
CREATE FUNCTION dataloader.lookback_is_valid(lookback text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF lookback IS NULL OR lookback ~ '^\s*[0-9]+\s*$' THEN
        RETURN true;
    END IF;
    PERFORM lookback::interval;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;

CREATE FUNCTION dataloader.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF to_jsonb(NEW) - 'updated_at' IS DISTINCT FROM to_jsonb(OLD) - 'updated_at' THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END $$;
"""

VALIDATE_DBCONFIG = r"""
CREATE FUNCTION dataloader.validate_table_control_dbconfig() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control_dbconfig';
BEGIN
    IF NEW.db_config_key IS NULL OR btrim(NEW.db_config_key) = '' THEN
        PERFORM dataloader.refuse(t, 'db_config_key', 'required, must not be empty');
    END IF;
    IF NEW.db_type IS NULL OR NEW.db_type NOT IN
            ('postgresql', 'mysql', 'mariadb', 'sqlite', 'mssql', 'oracle', 'snowflake', 'clickhouse') THEN
        PERFORM dataloader.refuse(t, 'db_type', format('must be one of postgresql, mysql, mariadb, sqlite, '
            'mssql, oracle, snowflake, clickhouse (got %L)', NEW.db_type));
    END IF;
    IF NEW.db_kv_scope IS NULL OR NEW.db_kv_scope NOT IN ('env', 'file', 'literal') THEN
        PERFORM dataloader.refuse(t, 'db_kv_scope',
            format('must be one of env, file, literal (got %L)', NEW.db_kv_scope));
    END IF;
    IF NEW.db_config_value IS NULL OR jsonb_typeof(NEW.db_config_value) <> 'object' THEN
        PERFORM dataloader.refuse(t, 'db_config_value', 'must be a JSON object');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate BEFORE INSERT OR UPDATE ON dataloader.table_control_dbconfig
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control_dbconfig();
CREATE TRIGGER b_touch_updated_at BEFORE UPDATE ON dataloader.table_control_dbconfig
    FOR EACH ROW EXECUTE FUNCTION dataloader.touch_updated_at();
"""

VALIDATE_TABLE_CONTROL = r"""
CREATE FUNCTION dataloader.validate_table_control() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control';
    s text := NEW.load_strategy;
BEGIN
    IF NEW.control_key IS NULL OR btrim(NEW.control_key) = '' THEN
        PERFORM dataloader.refuse(t, 'control_key', 'required, must not be empty');
    END IF;
    IF NEW.db_config_key IS NULL THEN
        PERFORM dataloader.refuse(t, 'db_config_key', 'required');
    END IF;
    IF NEW.source_table IS NULL OR NEW.source_table = '' THEN
        PERFORM dataloader.refuse(t, 'source_table', 'required, must not be empty');
    END IF;
    IF NEW.destination_table IS NULL OR NEW.destination_table !~ '^[A-Za-z0-9_]+(/[A-Za-z0-9_]+)*$' THEN
        PERFORM dataloader.refuse(t, 'destination_table', format('must be a safe path: segments of letters, '
            'digits and _ joined by / (no leading /, no ..) (got %L)', NEW.destination_table));
    END IF;
    IF s IS NULL OR s NOT IN ('full', 'incremental', 'append_only', 'rolling', 'check_and_load',
                              'chunked_backfill') THEN
        PERFORM dataloader.refuse(t, 'load_strategy', format('must be one of full, incremental, append_only, '
            'rolling, check_and_load, chunked_backfill (got %L)', s));
    END IF;
    IF NEW.last_status IS NOT NULL AND NEW.last_status NOT IN ('Queued', 'In Progress', 'Succeeded', 'Failed') THEN
        PERFORM dataloader.refuse(t, 'last_status', format('must be NULL or one of Queued, In Progress, '
            'Succeeded, Failed (got %L)', NEW.last_status));
    END IF;
    -- Cron and time zone only when they change: pg_timezone_names is not free, status updates are frequent.
    IF TG_OP = 'INSERT' OR NEW.cron IS DISTINCT FROM OLD.cron THEN
        IF NOT dataloader.cron_is_valid(NEW.cron) THEN
            PERFORM dataloader.refuse(t, 'cron', format('must be a 5-field cron expression (minute hour '
                'day-of-month month day-of-week) (got %L)', NEW.cron));
        END IF;
    END IF;
    IF TG_OP = 'INSERT' OR NEW.cron_timezone IS DISTINCT FROM OLD.cron_timezone THEN
        IF NOT dataloader.timezone_is_valid(NEW.cron_timezone) THEN
            PERFORM dataloader.refuse(t, 'cron_timezone',
                format('must be a time zone name from pg_timezone_names (got %L)', NEW.cron_timezone));
        END IF;
    END IF;
    IF NEW.is_active IS NULL THEN
        PERFORM dataloader.refuse(t, 'is_active', 'required');
    END IF;
    IF s IN ('incremental', 'append_only', 'check_and_load', 'chunked_backfill')
            AND (NEW.incremental_column IS NULL OR NEW.incremental_column = '') THEN
        PERFORM dataloader.refuse(t, 'incremental_column', format('required for load_strategy %s', s));
    END IF;
    IF s IN ('incremental', 'rolling', 'chunked_backfill')
            AND (coalesce(cardinality(NEW.primary_keys), 0) = 0
                 OR array_position(NEW.primary_keys, NULL) IS NOT NULL
                 OR '' = ANY (NEW.primary_keys)) THEN
        PERFORM dataloader.refuse(t, 'primary_keys',
            format('required: a non-empty array of column names for load_strategy %s', s));
    END IF;
    IF s = 'rolling' AND (NEW.rolling_column IS NULL OR NEW.rolling_column = '') THEN
        PERFORM dataloader.refuse(t, 'rolling_column', 'required for load_strategy rolling');
    END IF;
    IF (s = 'rolling' OR NEW.rolling_window_days IS NOT NULL) AND coalesce(NEW.rolling_window_days, 0) <= 0 THEN
        PERFORM dataloader.refuse(t, 'rolling_window_days',
            format('must be > 0 (required for load_strategy rolling) (got %s)', coalesce(NEW.rolling_window_days::text, 'NULL')));
    END IF;
    IF s = 'chunked_backfill' AND (NEW.chunk_column IS NULL OR NEW.chunk_column = '') THEN
        PERFORM dataloader.refuse(t, 'chunk_column', 'required for load_strategy chunked_backfill');
    END IF;
    IF (s = 'chunked_backfill' OR NEW.chunk_size IS NOT NULL) AND coalesce(NEW.chunk_size, 0) <= 0 THEN
        PERFORM dataloader.refuse(t, 'chunk_size',
            format('must be > 0 (required for load_strategy chunked_backfill) (got %s)', coalesce(NEW.chunk_size::text, 'NULL')));
    END IF;
    IF NOT dataloader.lookback_is_valid(NEW.incremental_lookback) THEN
        PERFORM dataloader.refuse(t, 'incremental_lookback',
            format('must be NULL, a non-negative integer or an interval such as ''2 hours'' (got %L)',
                   NEW.incremental_lookback));
    END IF;
    IF NEW.max_retries IS NULL OR NEW.max_retries < 0 THEN
        PERFORM dataloader.refuse(t, 'max_retries',
            format('must be >= 0 (got %s)', coalesce(NEW.max_retries::text, 'NULL')));
    END IF;
    IF NEW.retry_count IS NULL OR NEW.retry_count < 0 THEN
        PERFORM dataloader.refuse(t, 'retry_count',
            format('must be >= 0 (got %s)', coalesce(NEW.retry_count::text, 'NULL')));
    END IF;
    IF NEW.load_full IS NULL THEN
        PERFORM dataloader.refuse(t, 'load_full', 'required');
    END IF;
    IF NEW.staging_model_processed IS NULL THEN
        PERFORM dataloader.refuse(t, 'staging_model_processed', 'required');
    END IF;
    IF NEW.manual_review IS NULL THEN
        PERFORM dataloader.refuse(t, 'manual_review', 'required');
    END IF;
    RETURN NEW;
END $$;

-- status_changed_at = when the row entered its last_status, however the status was changed
-- (our transitions set it explicitly; a person at psql need not).
CREATE FUNCTION dataloader.track_status_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.last_status IS NOT NULL AND NEW.status_changed_at IS NULL THEN
            NEW.status_changed_at := now();
        END IF;
    ELSIF NEW.last_status IS DISTINCT FROM OLD.last_status
          AND NEW.status_changed_at IS NOT DISTINCT FROM OLD.status_changed_at THEN
        NEW.status_changed_at := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control();
CREATE TRIGGER b_track_status_change BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.track_status_change();
CREATE TRIGGER c_touch_updated_at BEFORE UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.touch_updated_at();
"""

HISTORY_TRIGGER = r"""
CREATE FUNCTION dataloader.record_table_control_history() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb;
    new_row jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        old_row := to_jsonb(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        new_row := to_jsonb(NEW);
    END IF;
    IF TG_OP = 'UPDATE' AND old_row - 'updated_at' = new_row - 'updated_at' THEN
        RETURN NULL;  -- an UPDATE that changed nothing is not history
    END IF;
    INSERT INTO dataloader.table_control_history
        (control_key, config_id, change_type, change_source, old_values, new_values)
    VALUES (
        coalesce(new_row ->> 'control_key', old_row ->> 'control_key'),
        coalesce(new_row ->> 'config_id', old_row ->> 'config_id')::int,
        TG_OP,
        coalesce(nullif(current_setting('application_name', true), ''), 'unknown'),
        old_row,
        new_row
    );
    RETURN NULL;
END $$;

CREATE TRIGGER z_history AFTER INSERT OR UPDATE OR DELETE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.record_table_control_history();
"""

STATUS_VIEW = r"""
CREATE VIEW dataloader.v_table_status AS
SELECT
    tc.control_key,
    tc.db_config_key                    AS source,
    tc.load_strategy                    AS strategy,
    tc.is_active,
    tc.last_status                      AS status,
    last_load.load_start_time           AS last_load_start,
    last_load.load_end_time             AS last_load_end,
    tc.last_rows_processed              AS last_rows,
    tc.next_load_date_time,
    now() - last_success.load_end_time  AS lag,
    tc.retry_count,
    tc.max_retries,
    tc.manual_review,
    tc.manual_review_reason,
    tc.last_status_message              AS message
FROM dataloader.table_control AS tc
LEFT JOIN LATERAL (
    SELECT hm.load_start_time, hm.load_end_time
    FROM dataloader.historical_metadata AS hm
    WHERE hm.control_key = tc.control_key
    ORDER BY hm.id DESC
    LIMIT 1
) AS last_load ON true
LEFT JOIN LATERAL (
    SELECT max(hm.load_end_time) AS load_end_time
    FROM dataloader.historical_metadata AS hm
    WHERE hm.control_key = tc.control_key AND hm.load_status = 'Succeeded'
) AS last_success ON true
ORDER BY tc.control_key;
"""

DROP_ALL = r"""
DROP VIEW IF EXISTS dataloader.v_table_status;
DROP TABLE IF EXISTS dataloader.table_control_history;
DROP TABLE IF EXISTS dataloader.historical_metadata;
DROP TABLE IF EXISTS dataloader.table_control;
DROP TABLE IF EXISTS dataloader.table_control_dbconfig;
DROP FUNCTION IF EXISTS dataloader.record_table_control_history();
DROP FUNCTION IF EXISTS dataloader.validate_table_control();
DROP FUNCTION IF EXISTS dataloader.track_status_change();
DROP FUNCTION IF EXISTS dataloader.validate_table_control_dbconfig();
DROP FUNCTION IF EXISTS dataloader.touch_updated_at();
DROP FUNCTION IF EXISTS dataloader.lookback_is_valid(text);
DROP FUNCTION IF EXISTS dataloader.timezone_is_valid(text);
DROP FUNCTION IF EXISTS dataloader.cron_is_valid(text);
DROP FUNCTION IF EXISTS dataloader.cron_field_is_valid(text, int, int, text[], int);
DROP FUNCTION IF EXISTS dataloader.refuse(text, text, text);
"""


upgrade, downgrade = sql_steps(
    (TABLES, RULE_HELPERS, VALIDATE_DBCONFIG, VALIDATE_TABLE_CONTROL, HISTORY_TRIGGER, STATUS_VIEW), DROP_ALL
)
