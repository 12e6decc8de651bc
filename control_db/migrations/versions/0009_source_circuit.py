"""A circuit breaker per source database: its settings, its state, its audit trail, its views.

- `table_control_dbconfig` gains the breaker's settings (defaults in brackets): `breaker_enabled`
  (true), `breaker_failures` (5 transient failures of the source's tables ...), `breaker_window_s`
  (... within 600 s of the first of them open the circuit), `breaker_cooldown_s` (120: the first
  cool-down before a probe), `breaker_max_cooldown_s` (3600: each failed probe doubles the cool-down
  up to this). A BEFORE trigger refuses bad values naming the column and the rule.
- `source_circuit`: one row per source that ever failed transiently: `state` closed | open |
  half_open, the failures counted in the current window, the cool-down and its end, the probe table.
- `source_circuit_history`: written by a trigger on every change of state (or of the probe), with
  `change_source` = the session's application_name, as `table_control_history` is.
- `historical_metadata.load_status` may be `Skipped`: a Queued attempt whose source's circuit opened
  before its run started it; it ended without loading and is no failure of the table.
- `v_table_status` gains `circuit` (the state of the row's source); `v_source_status` shows each
  source with its circuit, its settings and how many of its tables are in each status.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import importlib

from control_db.migrations.sql_revision import sql_steps

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_REVISION_0005 = importlib.import_module("control_db.migrations.versions.0005_status_view")
_FROM = "\nFROM dataloader.table_control AS tc\n"

SETTINGS = r"""
ALTER TABLE dataloader.table_control_dbconfig
    ADD COLUMN breaker_enabled boolean NOT NULL DEFAULT true,
    ADD COLUMN breaker_failures integer NOT NULL DEFAULT 5,
    ADD COLUMN breaker_window_s integer NOT NULL DEFAULT 600,
    ADD COLUMN breaker_cooldown_s integer NOT NULL DEFAULT 120,
    ADD COLUMN breaker_max_cooldown_s integer NOT NULL DEFAULT 3600;

CREATE FUNCTION dataloader.validate_breaker_settings() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    t constant text := 'table_control_dbconfig';
BEGIN
    IF NEW.breaker_failures < 1 THEN
        PERFORM dataloader.refuse(t, 'breaker_failures', 'must be at least 1 (failures that open the circuit)');
    END IF;
    IF NEW.breaker_window_s < 1 THEN
        PERFORM dataloader.refuse(t, 'breaker_window_s', 'must be at least 1 second');
    END IF;
    IF NEW.breaker_cooldown_s < 1 THEN
        PERFORM dataloader.refuse(t, 'breaker_cooldown_s', 'must be at least 1 second');
    END IF;
    IF NEW.breaker_max_cooldown_s < NEW.breaker_cooldown_s THEN
        PERFORM dataloader.refuse(t, 'breaker_max_cooldown_s', 'must be at least breaker_cooldown_s');
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER a_validate_breaker BEFORE INSERT OR UPDATE ON dataloader.table_control_dbconfig
    FOR EACH ROW EXECUTE FUNCTION dataloader.validate_breaker_settings();
"""

CIRCUIT = r"""
CREATE TABLE dataloader.source_circuit (
    db_config_key     text PRIMARY KEY REFERENCES dataloader.table_control_dbconfig (db_config_key)
                          ON UPDATE CASCADE ON DELETE CASCADE,
    state             text NOT NULL DEFAULT 'closed',
    failures          integer NOT NULL DEFAULT 0,
    window_started_at timestamptz,
    opened_at         timestamptz,
    cooldown_s        integer,
    open_until        timestamptz,
    probe_control_key text,
    reason            text,
    changed_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ck_source_circuit_state CHECK (state IN ('closed', 'open', 'half_open')),
    CONSTRAINT ck_source_circuit_open CHECK (state = 'closed' OR (open_until IS NOT NULL AND cooldown_s IS NOT NULL)),
    CONSTRAINT ck_source_circuit_probe CHECK ((state = 'half_open') = (probe_control_key IS NOT NULL))
);

CREATE TABLE dataloader.source_circuit_history (
    id                bigserial PRIMARY KEY,
    db_config_key     text NOT NULL,
    changed_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    old_state         text,
    new_state         text NOT NULL,
    failures          integer NOT NULL,
    cooldown_s        integer,
    open_until        timestamptz,
    probe_control_key text,
    reason            text,
    change_source     text NOT NULL
);
CREATE INDEX ix_source_circuit_history_key ON dataloader.source_circuit_history (db_config_key, id);

CREATE FUNCTION dataloader.record_source_circuit_history() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.state = NEW.state
       AND OLD.probe_control_key IS NOT DISTINCT FROM NEW.probe_control_key THEN
        RETURN NULL;  -- counting failures is no transition
    END IF;
    IF TG_OP = 'INSERT' AND NEW.state = 'closed' THEN
        RETURN NULL;
    END IF;
    INSERT INTO dataloader.source_circuit_history
        (db_config_key, old_state, new_state, failures, cooldown_s, open_until, probe_control_key, reason,
         change_source)
    VALUES (
        NEW.db_config_key, CASE WHEN TG_OP = 'UPDATE' THEN OLD.state ELSE 'closed' END, NEW.state,
        NEW.failures, NEW.cooldown_s, NEW.open_until, NEW.probe_control_key, NEW.reason,
        coalesce(nullif(current_setting('application_name', true), ''), 'unknown')
    );
    RETURN NULL;
END $$;

CREATE TRIGGER z_history AFTER INSERT OR UPDATE ON dataloader.source_circuit
    FOR EACH ROW EXECUTE FUNCTION dataloader.record_source_circuit_history();

ALTER TABLE dataloader.historical_metadata
    DROP CONSTRAINT ck_historical_metadata_load_status,
    ADD CONSTRAINT ck_historical_metadata_load_status CHECK (load_status IN
        ('Queued', 'In Progress', 'Succeeded', 'Failed', 'Skipped'));
"""

SOURCE_VIEW = r"""
CREATE VIEW dataloader.v_source_status AS
SELECT
    d.db_config_key,
    d.db_type,
    coalesce(sc.state, 'closed')                      AS circuit,
    coalesce(sc.failures, 0)                          AS failures,
    sc.window_started_at,
    sc.opened_at,
    sc.open_until,
    sc.cooldown_s,
    sc.probe_control_key,
    sc.reason,
    sc.changed_at,
    d.breaker_enabled,
    d.breaker_failures,
    d.breaker_window_s,
    d.breaker_cooldown_s,
    d.breaker_max_cooldown_s,
    coalesce(t.active_tables, 0)                      AS active_tables,
    coalesce(t.queued, 0)                             AS queued,
    coalesce(t.in_progress, 0)                        AS in_progress,
    coalesce(t.failed, 0)                             AS failed
FROM dataloader.table_control_dbconfig AS d
LEFT JOIN dataloader.source_circuit AS sc ON sc.db_config_key = d.db_config_key
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE tc.is_active)                      AS active_tables,
           count(*) FILTER (WHERE tc.last_status = 'Queued')         AS queued,
           count(*) FILTER (WHERE tc.last_status = 'In Progress')    AS in_progress,
           count(*) FILTER (WHERE tc.last_status = 'Failed')         AS failed
    FROM dataloader.table_control AS tc
    WHERE tc.db_config_key = d.db_config_key
) AS t ON true
ORDER BY d.db_config_key;
"""


def _status_view() -> str:
    """0005's v_table_status plus a last column `circuit`: the state of the row's source."""
    view = _REVISION_0005.STATUS_VIEW
    assert _FROM in view, "0005's v_table_status no longer reads FROM table_control AS tc"
    return view.replace(
        _FROM,
        ",\n    coalesce(sc.state, 'closed')        AS circuit"
        + _FROM
        + "LEFT JOIN dataloader.source_circuit AS sc ON sc.db_config_key = tc.db_config_key\n",
        1,
    )


DOWNGRADE = r"""
DROP VIEW IF EXISTS dataloader.v_source_status;
UPDATE dataloader.historical_metadata SET load_status = 'Failed' WHERE load_status = 'Skipped';
ALTER TABLE dataloader.historical_metadata
    DROP CONSTRAINT ck_historical_metadata_load_status,
    ADD CONSTRAINT ck_historical_metadata_load_status CHECK (load_status IN
        ('Queued', 'In Progress', 'Succeeded', 'Failed'));
DROP TABLE IF EXISTS dataloader.source_circuit_history;
DROP TABLE IF EXISTS dataloader.source_circuit;
DROP FUNCTION IF EXISTS dataloader.record_source_circuit_history();
DROP TRIGGER IF EXISTS a_validate_breaker ON dataloader.table_control_dbconfig;
DROP FUNCTION IF EXISTS dataloader.validate_breaker_settings();
ALTER TABLE dataloader.table_control_dbconfig
    DROP COLUMN breaker_max_cooldown_s,
    DROP COLUMN breaker_cooldown_s,
    DROP COLUMN breaker_window_s,
    DROP COLUMN breaker_failures,
    DROP COLUMN breaker_enabled;
"""


# Downgrade: v_table_status reads source_circuit, so it goes back to 0005's view first.
upgrade, downgrade = sql_steps(
    (SETTINGS, CIRCUIT, _status_view, SOURCE_VIEW), (_REVISION_0005.STATUS_VIEW, DOWNGRADE)
)
