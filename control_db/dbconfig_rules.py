"""Render `DB_CONFIG_KEYS` (dataloader_contract/vocabulary.py) into the SQL function the dbconfig trigger reads.

The trigger `a_validate_values` on table_control_dbconfig (migration 0003) calls
`dataloader.dbconfig_rules()`, which returns this document as jsonb:
`{"types": {db_type: {"required": [...], "allowed": [...]}}, "kinds": {key: kind}}`.
A migration that changes the keys re-runs `render_rules_function()`.
"""

from __future__ import annotations

import json
from typing import Any

from dataloader_contract.vocabulary import CONFIG_KEY_KINDS, DB_CONFIG_KEYS


def rules_document() -> dict[str, Any]:
    """The per-db_type key table as the trigger reads it."""
    return {
        "types": {
            db_type: {"required": list(keys.required), "allowed": list(keys.allowed)}
            for db_type, keys in DB_CONFIG_KEYS.items()
        },
        "kinds": dict(CONFIG_KEY_KINDS),
    }


def render_rules_function() -> str:
    """`CREATE OR REPLACE FUNCTION dataloader.dbconfig_rules()` returning `rules_document()`."""
    literal = json.dumps(rules_document(), sort_keys=True).replace("'", "''")
    return (
        "CREATE OR REPLACE FUNCTION dataloader.dbconfig_rules() RETURNS jsonb\n"
        f"LANGUAGE sql IMMUTABLE AS $rules$ SELECT '{literal}'::jsonb $rules$;"
    )
