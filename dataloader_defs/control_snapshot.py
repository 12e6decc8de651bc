"""The snapshot of the control table that the code location builds its assets from: the active
rows (with their source's db_type) and a fingerprint of every field the assets are built from.

It is the state of the control-table component (control_tables_component.py), stored as JSON in
Dagster's defs state storage; `control_table_sensor` compares its fingerprint with the database's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import psycopg


@dataclass(frozen=True)
class TableRow:
    """What a table's asset is built from: an active control row and its source's db_type."""

    control_key: str
    db_config_key: str
    db_type: str
    source_schema: str | None
    source_table: str
    destination_table: str
    load_strategy: str
    cron: str
    cron_timezone: str
    primary_keys: tuple[str, ...] = ()

    @property
    def asset_path(self) -> list[str]:
        """`bronze/erp/orders` -> ["bronze", "erp", "orders"]."""
        return [segment for segment in self.destination_table.split("/") if segment]


@dataclass(frozen=True)
class Snapshot:
    """Active control rows and the fingerprint of the control table they were read at."""

    fingerprint: str
    rows: tuple[TableRow, ...] = field(default_factory=tuple)

    def to_json(self) -> str:
        return json.dumps({"fingerprint": self.fingerprint, "rows": [asdict(r) for r in self.rows]}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Snapshot:
        data = json.loads(text)
        rows = tuple(
            TableRow(**{**r, "primary_keys": tuple(r.get("primary_keys") or ())}) for r in data["rows"]
        )
        return cls(fingerprint=str(data["fingerprint"]), rows=rows)


_ROWS_SQL = """
SELECT tc.control_key, tc.db_config_key, dc.db_type, tc.source_schema, tc.source_table,
       tc.destination_table, tc.load_strategy, tc.cron, tc.cron_timezone, tc.primary_keys
FROM dataloader.table_control AS tc
JOIN dataloader.table_control_dbconfig AS dc USING (db_config_key)
WHERE tc.is_active
ORDER BY tc.control_key
"""
# Every INSERT/UPDATE/DELETE of table_control adds a history row; status changes do too, so the
# fingerprint also covers the columns assets are built from by comparing snapshots, not just ids.
_FINGERPRINT_SQL = """
SELECT md5(string_agg(concat_ws('|', tc.control_key, tc.db_config_key, dc.db_type, tc.source_schema,
                                 tc.source_table, tc.destination_table, tc.load_strategy, tc.cron,
                                 tc.cron_timezone, array_to_string(tc.primary_keys, ',')), E'\\n'
                      ORDER BY tc.control_key))
FROM dataloader.table_control AS tc
JOIN dataloader.table_control_dbconfig AS dc USING (db_config_key)
WHERE tc.is_active
"""


def fingerprint(conn: psycopg.Connection) -> str:
    """A digest of every field the assets are built from (changes only when they change)."""
    row = conn.execute(_FINGERPRINT_SQL).fetchone()
    return (row[0] if row else None) or "empty"


def read_snapshot(conn: psycopg.Connection) -> Snapshot:
    """The active control rows, as the code location builds them."""
    # The fingerprint first: a change between the two reads then shows as a changed table next tick.
    digest = fingerprint(conn)
    rows = conn.execute(_ROWS_SQL).fetchall()
    tables = tuple(
        TableRow(
            control_key=r[0],
            db_config_key=r[1],
            db_type=r[2],
            source_schema=r[3],
            source_table=r[4],
            destination_table=r[5],
            load_strategy=r[6],
            cron=r[7],
            cron_timezone=r[8],
            primary_keys=tuple(r[9] or ()),
        )
        for r in rows
    )
    return Snapshot(fingerprint=digest, rows=tables)
