"""partition_by and schema_policy show on the table's asset (its definition metadata in the UI)."""

from __future__ import annotations

import psycopg
from defs_support import add_control

from control_db import queries
from dataloader_defs.control_snapshot import Snapshot, TableRow
from dataloader_defs.defs.assets import asset_spec


def test_layout_settings_show_on_the_asset(control_conn: psycopg.Connection, source: str) -> None:
    add_control(
        control_conn,
        "d.events",
        load_strategy="incremental",
        incremental_column="id",
        primary_keys=["id"],
        partition_by=["region", "month(created_at)"],
        schema_policy="freeze",
    )
    add_control(control_conn, "d.plain")
    before, rows = queries.asset_sources(control_conn)
    snapshot = Snapshot(fingerprint=before, rows=tuple(TableRow(**r.__dict__) for r in rows))
    specs = {r.control_key: asset_spec(r) for r in Snapshot.from_json(snapshot.to_json()).rows}
    assert specs["d.events"].metadata["partition_by"] == "region, month(created_at)"
    assert specs["d.events"].metadata["schema_policy"] == "freeze"
    assert "partition_by" not in specs["d.plain"].metadata
    assert "schema_policy" not in specs["d.plain"].metadata  # evolve, the default, is not repeated

    control_conn.execute(
        "UPDATE dataloader.table_control SET schema_policy = 'discard_new' WHERE control_key = 'd.events'"
    )
    assert queries.asset_fingerprint(control_conn) != before  # the asset is rebuilt with the new setting
