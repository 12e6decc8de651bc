"""The seventh strategy, `cdc`: a table's changes read from the source database's log.

`load_strategy` may be `cdc` (the CHECK constraint and 0001's `validate_table_control`). A cdc row
needs `primary_keys` (the MERGE key of every applied change); `delete_mode` none | soft | hard says
what a captured delete does. `validate_table_control` is replaced by 0001's own text with only the
two strategy rules widened (derived from it below, so every other rule stays identical);
the downgrade puts 0001's text back.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import importlib

from control_db.migrations.sql_revision import sql_steps

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_V1 = importlib.import_module("control_db.migrations.versions.0001_control_schema").VALIDATE_TABLE_CONTROL
_REPLACE = "CREATE OR REPLACE FUNCTION dataloader.validate_table_control()"
# validate_table_control only: 0001's text goes on with another function and the triggers.
_ORIGINAL = _V1[: _V1.index("CREATE FUNCTION dataloader.track_status_change()")].replace(
    "CREATE FUNCTION dataloader.validate_table_control()", _REPLACE
)
# (0001's text, the cdc text) for each rule that names strategies.
_EDITS = (
    (
        "'check_and_load',\n                              'chunked_backfill') THEN",
        "'check_and_load',\n                              'chunked_backfill', 'cdc') THEN",
    ),
    (
        "'rolling, check_and_load, chunked_backfill (got %L)'",
        "'rolling, check_and_load, chunked_backfill, cdc (got %L)'",
    ),
    (
        "IF s IN ('incremental', 'rolling', 'chunked_backfill')",
        "IF s IN ('incremental', 'rolling', 'chunked_backfill', 'cdc')",
    ),
)


def _with_cdc() -> str:
    text = _ORIGINAL
    for old, new in _EDITS:
        if text.count(old) != 1:
            raise RuntimeError(f"0010: 0001's validate_table_control no longer contains {old!r} once")
        text = text.replace(old, new)
    return text


_STRATEGIES = "'full', 'incremental', 'append_only', 'rolling', 'check_and_load', 'chunked_backfill'"
UPGRADE = f"""
ALTER TABLE dataloader.table_control DROP CONSTRAINT ck_table_control_load_strategy,
    ADD CONSTRAINT ck_table_control_load_strategy CHECK (load_strategy IN ({_STRATEGIES}, 'cdc'));
"""
DOWNGRADE = f"""
ALTER TABLE dataloader.table_control DROP CONSTRAINT ck_table_control_load_strategy,
    ADD CONSTRAINT ck_table_control_load_strategy CHECK (load_strategy IN ({_STRATEGIES}));
"""

upgrade, downgrade = sql_steps((UPGRADE, _with_cdc), (DOWNGRADE, _ORIGINAL))
