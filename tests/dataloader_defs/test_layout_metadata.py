"""The per-table policies show on the table's asset (its definition metadata in the UI): what lands
(include/exclude/hash_columns), partition_by, schema_policy, history_mode."""

from __future__ import annotations

import psycopg
from defs_support import add_control

from control_db import queries
from dataloader_defs.control_snapshot import Snapshot, TableRow
from dataloader_defs.defs.assets import asset_spec, build_load_assets


def _stored_snapshot(conn: psycopg.Connection) -> Snapshot:
    """The snapshot as the code location builds from it: read, stored as JSON, read back."""
    digest, rows = queries.asset_sources(conn)
    snapshot = Snapshot(fingerprint=digest, rows=tuple(TableRow(**r.__dict__) for r in rows))
    return Snapshot.from_json(snapshot.to_json())


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
    assert specs["d.plain"].metadata["schema_policy"] == "evolve"  # always said: it decides a drift

    control_conn.execute(
        "UPDATE dataloader.table_control SET schema_policy = 'discard_new' WHERE control_key = 'd.events'"
    )
    assert queries.asset_fingerprint(control_conn) != before  # the asset is rebuilt with the new setting


def test_what_lands_shows_on_the_asset(control_conn: psycopg.Connection, source: str) -> None:
    add_control(
        control_conn,
        "d.customers",
        load_strategy="incremental",
        incremental_column="updated_at",
        primary_keys=["id"],
        exclude_columns=["password_hash", "Internal Notes"],
        hash_columns=["email", "phone"],
        history_mode="scd2",
    )
    add_control(control_conn, "d.narrow", include_columns=["id", "country"])
    add_control(control_conn, "d.plain")
    snapshot = _stored_snapshot(control_conn)
    specs = {spec.metadata["control_key"]: spec for spec in build_load_assets(snapshot.rows).specs}

    customers = specs["d.customers"]
    assert customers.metadata["exclude_columns"] == "password_hash, Internal Notes"
    assert customers.metadata["hash_columns"] == "email, phone (HMAC-SHA-256, hex)"
    assert customers.metadata["schema_policy"] == "evolve"
    assert customers.metadata["history"].startswith("scd2: every version kept")
    assert customers.tags["dataloader/pii"] == "hashed"
    assert customers.description.endswith(" Hashed (HMAC-SHA-256, hex): email, phone.")
    assert "include_columns" not in customers.metadata
    assert specs["d.narrow"].metadata["include_columns"] == "id, country"
    plain = specs["d.plain"]
    for key in ("include_columns", "exclude_columns", "hash_columns", "partition_by", "history"):
        assert key not in plain.metadata
    assert "dataloader/pii" not in plain.tags
    assert "Hashed" not in plain.description

    before = snapshot.fingerprint
    control_conn.execute(
        "UPDATE dataloader.table_control SET hash_columns = '{email}' WHERE control_key = 'd.customers'"
    )
    hashed_less = queries.asset_fingerprint(control_conn)
    assert hashed_less != before  # the definitions are re-emitted with the new hashing
    assert _stored_snapshot(control_conn).rows[0].hash_columns == ["email"]
    # The same list moved from include_columns to exclude_columns is another asset.
    control_conn.execute(
        "UPDATE dataloader.table_control SET include_columns = NULL, exclude_columns = '{id,country}' "
        "WHERE control_key = 'd.narrow'"
    )
    assert queries.asset_fingerprint(control_conn) not in (before, hashed_less)


def test_a_paused_cdc_table_says_its_slot_still_holds_the_source_log(
    control_conn: psycopg.Connection, source: str
) -> None:
    add_control(control_conn, "d.payments", load_strategy="cdc", primary_keys=["id"], is_active=False)
    add_control(control_conn, "d.orders", load_strategy="cdc", primary_keys=["id"])
    add_control(control_conn, "d.paused_full", is_active=False)
    specs = {r.control_key: asset_spec(r) for r in _stored_snapshot(control_conn).rows}
    paused = specs["d.payments"]
    assert paused.metadata["cdc_slot"].startswith("kept while paused: the source retains its change log")
    assert "`dataloader cdc-drop d.payments` drops it" in paused.description
    assert "cdc_slot" not in specs["d.orders"].metadata  # an active cdc row consumes its slot
    assert "cdc_slot" not in specs["d.paused_full"].metadata  # no slot without cdc
