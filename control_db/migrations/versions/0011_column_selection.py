"""What lands, per table: column selection and PII hashing.

- `include_columns text[]`: only these source columns are read (pushed into the SELECT / COPY).
- `exclude_columns text[]`: every source column but these is read. Not both.
- `hash_columns text[]`: these columns land as the HMAC-SHA-256 (hex) of their value, keyed by the
  worker's hashing key (DATALOADER_HASH_KEY or the file `hash_key` under DATALOADER_SECRETS_DIR).

A BEFORE trigger refuses, naming table, column and rule: both lists set, an empty list or an empty
or NULL name, excluding (or leaving out of include_columns) a column the load needs — a primary key,
the incremental, rolling or chunk column —, hashing a column the load does not read, and hashing the
incremental, rolling or chunk column (a watermark, window or chunk over hashes means nothing).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE dataloader.table_control
    ADD COLUMN include_columns text[],
    ADD COLUMN exclude_columns text[],
    ADD COLUMN hash_columns text[];

COMMENT ON COLUMN dataloader.table_control.include_columns IS
    'Only these source columns are read and loaded (NULL: all). Not together with exclude_columns.';
COMMENT ON COLUMN dataloader.table_control.exclude_columns IS
    'These source columns are never read (NULL: none). Not together with include_columns.';
COMMENT ON COLUMN dataloader.table_control.hash_columns IS
    'These columns land as the HMAC-SHA-256 hex of their value (key: DATALOADER_HASH_KEY).';

-- The columns a load of `control` needs, each with the control-row field that names it.
CREATE FUNCTION dataloader.needed_columns(control dataloader.table_control)
RETURNS TABLE (column_name text, role text) LANGUAGE sql IMMUTABLE AS $$
    SELECT key, 'a primary key (primary_keys)' FROM unnest(control.primary_keys) AS key WHERE key IS NOT NULL
    UNION ALL SELECT control.incremental_column, 'the incremental_column' WHERE control.incremental_column IS NOT NULL
    UNION ALL SELECT control.rolling_column, 'the rolling_column' WHERE control.rolling_column IS NOT NULL
    UNION ALL SELECT control.chunk_column, 'the chunk_column' WHERE control.chunk_column IS NOT NULL
$$;

CREATE FUNCTION dataloader.validate_table_control_columns() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control';
    list_name text;
    names text[];
    needed record;
BEGIN
    FOREACH list_name IN ARRAY ARRAY['include_columns', 'exclude_columns', 'hash_columns'] LOOP
        names := CASE list_name WHEN 'include_columns' THEN NEW.include_columns
                                WHEN 'exclude_columns' THEN NEW.exclude_columns ELSE NEW.hash_columns END;
        IF names IS NOT NULL AND (cardinality(names) = 0 OR array_position(names, NULL) IS NOT NULL
                                  OR '' = ANY (names)) THEN
            PERFORM dataloader.refuse(t, list_name,
                'must be NULL or a non-empty array of column names (no NULL or empty name)');
        END IF;
    END LOOP;
    IF NEW.include_columns IS NOT NULL AND NEW.exclude_columns IS NOT NULL THEN
        PERFORM dataloader.refuse(t, 'exclude_columns',
            'cannot be set together with include_columns: set one of them (the other NULL)');
    END IF;
    FOR needed IN SELECT * FROM dataloader.needed_columns(NEW) LOOP
        IF needed.column_name = ANY (NEW.exclude_columns) THEN
            PERFORM dataloader.refuse(t, 'exclude_columns', format(
                'cannot exclude %L: it is %s, which the load reads', needed.column_name, needed.role));
        END IF;
        IF NEW.include_columns IS NOT NULL AND NOT needed.column_name = ANY (NEW.include_columns) THEN
            PERFORM dataloader.refuse(t, 'include_columns', format(
                'must include %L: it is %s, which the load reads', needed.column_name, needed.role));
        END IF;
        IF needed.column_name = ANY (NEW.hash_columns) AND needed.role <> 'a primary key (primary_keys)' THEN
            PERFORM dataloader.refuse(t, 'hash_columns', format(
                'cannot hash %L: it is %s, which must keep its source values (a watermark, window or '
                'chunk over hashes means nothing)', needed.column_name, needed.role));
        END IF;
    END LOOP;
    FOR i IN 1 .. coalesce(cardinality(NEW.hash_columns), 0) LOOP
        IF NEW.hash_columns[i] = ANY (NEW.exclude_columns)
                OR (NEW.include_columns IS NOT NULL AND NOT NEW.hash_columns[i] = ANY (NEW.include_columns)) THEN
            PERFORM dataloader.refuse(t, 'hash_columns', format(
                'cannot hash %L: the load does not read it (see include_columns / exclude_columns)',
                NEW.hash_columns[i]));
        END IF;
    END LOOP;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_columns BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control_columns();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a_validate_columns ON dataloader.table_control;
DROP FUNCTION IF EXISTS dataloader.validate_table_control_columns();
DROP FUNCTION IF EXISTS dataloader.needed_columns(dataloader.table_control);
ALTER TABLE dataloader.table_control
    DROP COLUMN hash_columns, DROP COLUMN exclude_columns, DROP COLUMN include_columns;
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
