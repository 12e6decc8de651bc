"""A cdc row's asset declares the cdc_slot_lag check beside the four checks every table has; other
rows do not."""

from __future__ import annotations

from dataloader_contract.result import CDC_LAG, CHECK_SPECS
from dataloader_defs.control_snapshot import TableRow
from dataloader_defs.defs.assets import build_load_assets


def _row(key: str, strategy: str) -> TableRow:
    return TableRow(
        control_key=key, db_config_key="erp", db_type="postgresql", source_schema="public",
        source_table=key, destination_table=f"bronze/erp/{key}", load_strategy=strategy,
        cron="0 * * * *", cron_timezone="UTC", primary_keys=("id",),
    )  # fmt: skip


def test_cdc_rows_get_the_lag_check() -> None:
    assets = build_load_assets([_row("orders", "cdc"), _row("items", "incremental")])
    checks: dict[str, set[str]] = {}
    for spec in assets.check_specs:
        checks.setdefault(spec.asset_key.path[-1], set()).add(spec.name)
    every_table = {spec.name for spec in CHECK_SPECS}
    assert checks == {"orders": every_table | {CDC_LAG}, "items": every_table}
