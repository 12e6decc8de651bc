"""What the code location builds its assets from: every row's asset fields and their digest.

Paused rows (is_active = false) are assets too: their Delta tables still exist and downstream assets
still depend on them; the asset says it is paused instead of vanishing.

`AssetSource` declares the fields once; the row query and the fingerprint are both built from it,
so the fingerprint covers exactly the fields the assets are built from (and nothing else: a status
change does not change it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import psycopg


@dataclass(frozen=True)
class AssetSource:
    """A control row as its asset sees it, with its source's db_type."""

    control_key: str
    db_config_key: str
    db_type: str
    source_schema: str | None
    source_table: str
    destination_table: str
    load_strategy: str
    cron: str
    cron_timezone: str
    # Set on a chunked_backfill row, and still set once it has handed over to incremental: how the
    # asset tells that an incremental table was backfilled.
    chunk_column: str | None = None
    partition_by: list[str] | None = None  # the table's layout in the lake, shown on the asset
    schema_policy: str = "evolve"
    is_active: bool = True
    history_mode: str = "none"  # scd2: the table keeps every version of a row
    # What lands (issue 22), shown on the asset: only these columns / all but these; these hashed.
    include_columns: list[str] | None = None
    exclude_columns: list[str] | None = None
    hash_columns: list[str] | None = None
    primary_keys: tuple[str, ...] = ()  # last: asset_sources builds the tuple from the last column


# Each field's SQL: db_type is the source's (dbconfig), the rest table_control's.
_COLUMNS = [f"dc.{f.name}" if f.name == "db_type" else f"tc.{f.name}" for f in fields(AssetSource)]
_FROM = """
FROM dataloader.table_control AS tc
JOIN dataloader.table_control_dbconfig AS dc USING (db_config_key)
"""
_ROWS_SQL = f"SELECT {', '.join(_COLUMNS)}{_FROM}ORDER BY tc.control_key"
# quote_nullable: a NULL stays a field of its own ('NULL', where concat_ws would drop it), and a value
# holding '|' stays one field, so moving a list from include_columns to exclude_columns changes it.
_DIGESTED = ", ".join(f"quote_nullable({column})" for column in _COLUMNS)
_FINGERPRINT_SQL = (
    f"SELECT md5(string_agg(concat_ws('|', {_DIGESTED}), E'\\n' ORDER BY tc.control_key)){_FROM}"
)


def asset_fingerprint(conn: psycopg.Connection) -> str:
    """A digest of every AssetSource field of every row ("empty" when there are none)."""
    row = conn.execute(_FINGERPRINT_SQL).fetchone()
    return (row[0] if row else None) or "empty"


def asset_sources(conn: psycopg.Connection) -> tuple[str, list[AssetSource]]:
    """The fingerprint, then every row by control_key. The fingerprint is read first: a change
    between the two reads then shows as a changed fingerprint on the next comparison."""
    digest = asset_fingerprint(conn)
    rows = [
        AssetSource(*values[:-1], primary_keys=tuple(values[-1] or ()))
        for values in conn.execute(_ROWS_SQL).fetchall()
    ]
    return digest, rows
