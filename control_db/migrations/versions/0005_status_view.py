"""v_table_status columns named as in table_control; indexes that keep a sensor tick cheap.

The view's columns now carry the names people already know from `table_control`
(`last_status`, not `status`; `db_config_key`, `load_strategy`, `last_rows_processed`,
`last_status_message`) and `last_load_start_time` / `last_load_end_time` after
`historical_metadata`'s columns. The indexes serve the queries a master, reconcile or landing tick
asks (`benchmarks/master_tick.py` times them at 10,000 rows and 1M history rows):

- `ix_table_control_active` (partial, active rows): `active_control_keys`, an index-only scan.
- `ix_table_control_staging_pending` (partial, no staging model yet): `landing_pending`.
- `ix_historical_metadata_open` (partial, attempts without a final status): `open_history_rows`
  reads only the open attempts instead of the whole history.
- `ix_historical_metadata_succeeded` (partial, succeeded attempts by key and end time):
  `landing_pending`'s EXISTS and the view's lag (`max(load_end_time)`) stop scanning every attempt.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib

from control_db.migrations.sql_revision import sql_steps

revision = "0005"
down_revision = "0004"

# 0001's view (unchanged since): its joins stay, only the column names change.
_REVISION_0001 = importlib.import_module("control_db.migrations.versions.0001_control_schema")
_JOINS = _REVISION_0001.STATUS_VIEW[_REVISION_0001.STATUS_VIEW.index("FROM dataloader.table_control AS tc") :]

STATUS_VIEW = (
    r"""
DROP VIEW dataloader.v_table_status;
CREATE VIEW dataloader.v_table_status AS
SELECT
    tc.control_key,
    tc.db_config_key,
    tc.load_strategy,
    tc.is_active,
    tc.last_status,
    last_load.load_start_time           AS last_load_start_time,
    last_load.load_end_time             AS last_load_end_time,
    tc.last_rows_processed,
    tc.next_load_date_time,
    now() - last_success.load_end_time  AS lag,
    tc.retry_count,
    tc.max_retries,
    tc.manual_review,
    tc.manual_review_reason,
    tc.last_status_message
"""
    + _JOINS
)

INDEXES = r"""
CREATE INDEX ix_table_control_active ON dataloader.table_control (control_key) WHERE is_active;
CREATE INDEX ix_table_control_staging_pending ON dataloader.table_control (config_id)
    WHERE NOT staging_model_processed;
CREATE INDEX ix_historical_metadata_open ON dataloader.historical_metadata (id)
    WHERE load_end_time IS NULL AND load_status IN ('Queued', 'In Progress');
CREATE INDEX ix_historical_metadata_succeeded ON dataloader.historical_metadata (control_key, load_end_time)
    WHERE load_status = 'Succeeded';
"""

DROP_INDEXES = r"""
DROP INDEX dataloader.ix_historical_metadata_succeeded;
DROP INDEX dataloader.ix_historical_metadata_open;
DROP INDEX dataloader.ix_table_control_staging_pending;
DROP INDEX dataloader.ix_table_control_active;
"""


upgrade, downgrade = sql_steps(
    (STATUS_VIEW, INDEXES),
    (DROP_INDEXES, "DROP VIEW dataloader.v_table_status;\n" + _REVISION_0001.STATUS_VIEW),
)
