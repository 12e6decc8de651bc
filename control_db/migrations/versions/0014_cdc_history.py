"""History (scd2) on `cdc` rows: the change-log MERGE now keeps versions (pipes_workers/cdc/apply.py).

`validate_table_control_history` (0013's own trigger function) is replaced by 0013's text with only
the strategy rule widened to cdc (derived from it below, so every other rule stays identical); the
downgrade puts 0013's text back, refusing scd2 on cdc again.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import importlib

from control_db.migrations.sql_revision import sql_steps

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_V13 = importlib.import_module("control_db.migrations.versions.0013_history_mode").UPGRADE
_CREATE = "CREATE FUNCTION dataloader.validate_table_control_history()"
# The function only: 0013's text goes on with the trigger.
_ORIGINAL = _V13[_V13.index(_CREATE) : _V13.index("CREATE TRIGGER a_validate_history")].replace(
    _CREATE, "CREATE OR REPLACE FUNCTION dataloader.validate_table_control_history()"
)
# (0013's text, the cdc text) for each part of the rule that names strategies.
_EDITS = (
    (
        "NOT IN ('incremental', 'rolling', 'check_and_load') THEN",
        "NOT IN ('incremental', 'rolling', 'check_and_load', 'cdc') THEN",
    ),
    (
        "'on primary_keys (incremental, rolling, check_and_load), not %s'",
        "'on primary_keys (incremental, rolling, check_and_load, cdc), not %s'",
    ),
)


def _with_cdc() -> str:
    text = _ORIGINAL
    for old, new in _EDITS:
        if text.count(old) != 1:
            raise RuntimeError(f"0014: 0013's validate_table_control_history no longer contains {old!r} once")
        text = text.replace(old, new)
    return text


upgrade, downgrade = sql_steps(_with_cdc, _ORIGINAL)
