"""asset_sources / asset_fingerprint: the active rows' asset fields, and a digest that changes with
exactly those fields (a status change or an inactive row leaves it alone)."""

from __future__ import annotations

import psycopg
from control_rows import INCREMENTAL, AddTable

from control_db import queries as q


def test_rows_and_fingerprint_follow_the_asset_fields_only(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    assert q.asset_sources(control_conn) == ("empty", [])
    add_table("erp.public.orders", **INCREMENTAL)
    add_table("erp.public.archive", is_active=False)
    digest, rows = q.asset_sources(control_conn)
    assert rows == [
        q.AssetSource(
            control_key="erp.public.orders",
            db_config_key="erp",
            db_type="postgresql",
            source_schema="public",
            source_table="orders",
            destination_table="bronze/erp_public_orders",
            load_strategy="incremental",
            cron="0 * * * *",
            cron_timezone="UTC",
            primary_keys=("id",),
        )
    ]
    assert q.asset_fingerprint(control_conn) == digest

    control_conn.execute(
        "UPDATE dataloader.table_control SET last_status = 'Succeeded', last_status_message = 'x', "
        "maintenance_owner = 'o', maintenance_expires_at = now() WHERE control_key = 'erp.public.orders'"
    )
    control_conn.execute("UPDATE dataloader.table_control SET cron = '5 * * * *' WHERE is_active = false")
    assert q.asset_fingerprint(control_conn) == digest

    control_conn.execute("UPDATE dataloader.table_control SET primary_keys = '{id,region}'")
    changed = q.asset_fingerprint(control_conn)
    assert changed != digest
    control_conn.execute("UPDATE dataloader.table_control SET cron = '5 * * * *'")
    assert q.asset_fingerprint(control_conn) not in (digest, changed)
