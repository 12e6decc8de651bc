"""A cdc row end to end in Dagster: the sensor's run loads the snapshot, then the changes, through the
Pipes worker; the materialisation shows the slot's lag and the asset gets the cdc_slot_lag check."""

from __future__ import annotations

import psycopg
from defs_support import add_control, add_source, materialize_by_hand, row, tick_and_run
from deltalake import DeltaTable


def test_cdc_row_through_the_sensor_and_by_hand(control_conn, cdc_pg_url, instance, resources, lake_root):
    add_source(control_conn, cdc_pg_url, key="test_cdc")
    with psycopg.connect(cdc_pg_url, autocommit=True) as source:
        source.execute("CREATE TABLE orders_cdc (id integer PRIMARY KEY, amount numeric(10, 2), note text)")
        source.execute("INSERT INTO orders_cdc SELECT g, g * 1.5, 'n' || g FROM generate_series(1, 40) g")
        add_control(
            control_conn, "cdc.orders", db_config_key="test_cdc", source_table="orders_cdc",
            load_strategy="cdc", primary_keys=["id"], delete_mode="hard",
        )  # fmt: skip

        _, first = tick_and_run(instance, resources)
        assert first.success
        loaded = row(control_conn, "cdc.orders")
        assert loaded.last_status == "Succeeded" and loaded.last_rows_processed == 40
        assert loaded.incremental_value is not None and "/" in loaded.incremental_value  # an LSN

        source.execute("UPDATE orders_cdc SET amount = 0 WHERE id <= 5")
        source.execute("DELETE FROM orders_cdc WHERE id > 30")
        second = materialize_by_hand(instance, resources, "cdc.orders")
    assert second.success
    (event,) = second.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["strategy"].value == "cdc" and meta["rows_read"].value == 15
    assert meta["cdc_lag_bytes"].value >= 0 and meta["rows_deleted"].value == 10
    checks = {e.check_name: e for e in second.get_asset_check_evaluations()}
    assert checks["cdc_slot_lag"].passed, checks["cdc_slot_lag"].metadata
    assert all(c.passed for c in checks.values()), {n: c.metadata for n, c in checks.items() if not c.passed}
    table = DeltaTable(str(lake_root / "bronze/test/orders_cdc")).to_pyarrow_table()
    assert sorted(table.column("id").to_pylist()) == list(range(1, 31))
    assert row(control_conn, "cdc.orders").incremental_value == meta["watermark_after"].value
