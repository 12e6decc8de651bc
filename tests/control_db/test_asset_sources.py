"""asset_sources / asset_fingerprint: every row's asset fields (a paused row's included), and a digest
that changes with exactly those fields (a status change leaves it alone; pausing a row changes it)."""

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
    common = {
        "db_config_key": "erp",
        "db_type": "postgresql",
        "source_schema": "public",
        "cron_timezone": "UTC",
    }
    assert rows == [
        q.AssetSource(
            control_key="erp.public.archive",
            source_table="archive",
            destination_table="bronze/erp_public_archive",
            load_strategy="full",
            cron="0 * * * *",
            is_active=False,
            **common,
        ),
        q.AssetSource(
            control_key="erp.public.orders",
            source_table="orders",
            destination_table="bronze/erp_public_orders",
            load_strategy="incremental",
            cron="0 * * * *",
            primary_keys=("id",),
            **common,
        ),
    ]
    assert q.asset_fingerprint(control_conn) == digest

    control_conn.execute(
        "UPDATE dataloader.table_control SET last_status = 'Succeeded', last_status_message = 'x', "
        "maintenance_owner = 'o', maintenance_expires_at = now() WHERE control_key = 'erp.public.orders'"
    )
    assert q.asset_fingerprint(control_conn) == digest  # status fields are not asset fields
    control_conn.execute("UPDATE dataloader.table_control SET is_active = true")
    resumed = q.asset_fingerprint(control_conn)
    assert resumed != digest  # the paused asset becomes an active one
    digest = resumed

    control_conn.execute("UPDATE dataloader.table_control SET primary_keys = '{id,region}'")
    changed = q.asset_fingerprint(control_conn)
    assert changed != digest
    control_conn.execute("UPDATE dataloader.table_control SET cron = '5 * * * *'")
    assert q.asset_fingerprint(control_conn) not in (digest, changed)
