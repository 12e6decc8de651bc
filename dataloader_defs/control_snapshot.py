"""The snapshot of the control table that the code location builds its assets from.

The code location never blocks on the control database: at load it refreshes the snapshot when the
database answers (within a few seconds) and otherwise builds from the last snapshot on disk. The
`control_table_sensor` compares the snapshot's fingerprint (the newest `table_control_history` id
and the row count) with the database's and, when rows were added, changed or removed, writes a new
snapshot and asks Dagster to reload the code location.

Location: DATALOADER_STATE_DIR (default `.dataloader/state`), file `control_rows.json`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

from control_db.urls import libpq_url

STATE_DIR_ENV = "DATALOADER_STATE_DIR"
DEFAULT_STATE_DIR = ".dataloader/state"
SNAPSHOT_FILE = "control_rows.json"
CONNECT_TIMEOUT_S = 3


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


def state_dir() -> Path:
    """Where the snapshot lives."""
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


def fingerprint(conn: psycopg.Connection) -> str:
    """A digest of every field the assets are built from (changes only when they change)."""
    row = conn.execute(_FINGERPRINT_SQL).fetchone()
    return (row[0] if row else None) or "empty"


def read_snapshot(conn: psycopg.Connection) -> Snapshot:
    """The active control rows, as the code location builds them."""
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
    return Snapshot(fingerprint=fingerprint(conn), rows=tables)


def write_snapshot(snapshot: Snapshot, directory: Path | None = None) -> Path:
    """Write the snapshot atomically (a reader never sees half a file)."""
    folder = directory or state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SNAPSHOT_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(snapshot.to_json(), encoding="utf-8")
    temporary.replace(path)
    return path


def stored_snapshot(directory: Path | None = None) -> Snapshot | None:
    """The last snapshot written, or None."""
    path = (directory or state_dir()) / SNAPSHOT_FILE
    if not path.is_file():
        return None
    return Snapshot.from_json(path.read_text(encoding="utf-8"))


def refresh(url: str, directory: Path | None = None) -> Snapshot:
    """Read the control table and store the snapshot; raises psycopg.Error when it is unreachable."""
    with psycopg.connect(
        libpq_url(url),
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name="dataloader-snapshot",
    ) as conn:
        snapshot = read_snapshot(conn)
    write_snapshot(snapshot, directory)
    return snapshot


def load_for_definitions(url: str | None, directory: Path | None = None) -> tuple[Snapshot, str]:
    """The snapshot to build definitions from, and where it came from (for the log).

    Fresh from the control database when it answers; else the last stored one; else empty.
    """
    if url:
        try:
            return refresh(url, directory), "read from the control database"
        except (psycopg.Error, OSError) as exc:
            reason = f"control database unreachable ({type(exc).__name__})"
    else:
        reason = "DATALOADER_CONTROL_DB_URL is not set"
    stored = stored_snapshot(directory)
    if stored is not None:
        return stored, f"{reason}: built from the last snapshot"
    return Snapshot(fingerprint="none"), f"{reason} and no snapshot stored: no table assets"
