"""destination_table names a folder of its own: no Delta-reserved segment, no over-long segment,
no other row's folder in another case, inside it or around it.

- A segment starting with `_delta` (any case) is refused: `bronze/n/_delta_log` wrote a commit
  into table `bronze/n`'s log folder and broke that table's loads.
- A segment over 255 bytes is refused: no file system takes a file name that long (the load
  failed with `File name too long` while the row looked valid).
- Another row's destination equal but for case is refused (the same folder on a case-insensitive
  file system), and so is one inside or around this one (`bronze/n` and `bronze/n/x`): the outer
  table's full vacuum deletes files no version of its own references — the inner table's.
  Exact duplicates stay with `uq_table_control_destination_table`.

The rules run in their own trigger (`a_validate_destination`, after 0001's `a_validate`), only when
an INSERT or UPDATE sets the destination, so rows stored before keep taking status updates;
`dataloader validate` lists stored rows that break them (`destination_table_problems`). The
trigger takes a transaction-level advisory lock before it compares, so two transactions adding
colliding destinations at once cannot both pass.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from control_db.migrations.sql_revision import sql_steps

revision = "0006"
down_revision = "0005"

# pg_advisory_xact_lock key serialising destination changes (see QUEUE_LOCK_ID in transitions.py).
DESTINATION_LOCK_ID = 7_240_431_006

UPGRADE = rf"""
-- Every problem of `destination` as the destination_table of row (`config_id`, `control_key`):
-- its segments, then the other row it collides with (the same folder but for case first, then by
-- control_key). Rows with the same config_id or control_key are not other rows (an upsert on
-- control_key meets its own row).
CREATE FUNCTION dataloader.destination_table_problems(config_id integer, control_key text, destination text)
RETURNS SETOF text LANGUAGE plpgsql STABLE AS $$
DECLARE
    segment text;
    other record;
BEGIN
    FOREACH segment IN ARRAY string_to_array(destination, '/') LOOP
        IF starts_with(lower(segment), '_delta') THEN
            RETURN NEXT format('segment %s is reserved: a segment starting with _delta is read as a Delta '
                               'table''s own folder such as _delta_log (got %L)', segment, destination);
        END IF;
        IF octet_length(segment) > 255 THEN
            RETURN NEXT format('segment %s… is %s bytes: a file name holds at most 255 bytes',
                               left(segment, 40), octet_length(segment));
        END IF;
    END LOOP;
    SELECT tc.control_key AS key, tc.destination_table AS path INTO other
    FROM dataloader.table_control AS tc
    WHERE tc.config_id <> destination_table_problems.config_id
      AND tc.control_key <> destination_table_problems.control_key
      AND tc.destination_table <> destination
      AND (lower(tc.destination_table) = lower(destination)
           OR starts_with(lower(tc.destination_table), lower(destination) || '/')
           OR starts_with(lower(destination), lower(tc.destination_table) || '/'))
    ORDER BY lower(tc.destination_table) = lower(destination) DESC, tc.control_key
    LIMIT 1;
    IF other.key IS NULL THEN
        RETURN;
    ELSIF lower(other.path) = lower(destination) THEN
        RETURN NEXT format('collides with %s''s destination_table %L: the same folder but for case (one '
                           'folder on a case-insensitive file system) (got %L)', other.key, other.path,
                           destination);
    ELSE
        RETURN NEXT format('overlaps %s''s destination_table %L: one table''s folder would hold the '
                           'other''s, and a vacuum of the outer table deletes the inner table''s files '
                           '(got %L)', other.key, other.path, destination);
    END IF;
END $$;

CREATE FUNCTION dataloader.validate_table_control_destination() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    problem text;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.destination_table IS NOT DISTINCT FROM OLD.destination_table THEN
        RETURN NEW;
    END IF;
    -- Held until the transaction ends: a concurrent change waits here, then (a new statement, a
    -- new snapshot) sees this one's row.
    PERFORM pg_advisory_xact_lock({DESTINATION_LOCK_ID});
    SELECT p INTO problem
    FROM dataloader.destination_table_problems(NEW.config_id, NEW.control_key, NEW.destination_table) AS p
    LIMIT 1;
    IF problem IS NOT NULL THEN
        PERFORM dataloader.refuse(TG_TABLE_NAME, 'destination_table', problem);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_destination BEFORE INSERT OR UPDATE ON dataloader.table_control
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_table_control_destination();
"""

DOWNGRADE = r"""
DROP TRIGGER IF EXISTS a_validate_destination ON dataloader.table_control;
DROP FUNCTION IF EXISTS dataloader.validate_table_control_destination();
DROP FUNCTION IF EXISTS dataloader.destination_table_problems(integer, text, text);
"""


upgrade, downgrade = sql_steps(UPGRADE, DOWNGRADE)
