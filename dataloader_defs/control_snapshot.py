"""The snapshot of the control table that the code location builds its assets from: every
row (paused ones included, with their source's db_type) and a fingerprint of every field the assets are built from.

The rows and the fingerprint come from `control_db.queries.asset_sources`, which declares the
fields once. It is the state of the control-table component (control_tables_component.py), stored as JSON in
Dagster's defs state storage; `control_table_sensor` compares its fingerprint with the database's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import psycopg

from control_db import queries
from control_db.queries import AssetSource


@dataclass(frozen=True)
class TableRow(AssetSource):
    """What a table's asset is built from (the fields `control_db.queries.AssetSource` declares)."""

    @property
    def asset_path(self) -> list[str]:
        """`bronze/erp/orders` -> ["bronze", "erp", "orders"]."""
        return [segment for segment in self.destination_table.split("/") if segment]


@dataclass(frozen=True)
class Snapshot:
    """The control rows and the fingerprint of the control table they were read at."""

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


def fingerprint(conn: psycopg.Connection) -> str:
    """A digest of every field the assets are built from (changes only when they change)."""
    return queries.asset_fingerprint(conn)


def read_snapshot(conn: psycopg.Connection) -> Snapshot:
    """The control rows, as the code location builds them (fingerprint read first)."""
    digest, sources = queries.asset_sources(conn)
    return Snapshot(fingerprint=digest, rows=tuple(TableRow(**asdict(source)) for source in sources))
