"""Every control row is its own asset (a paused one says so); `dataloader_table_load` is the one subsettable
multi-asset that loads whichever of them a run selects, through the `loader` resource (TableLoader,
defs/loader/): per table, begin the attempt (Queued -> In Progress) -> the Pipes worker loads and
reports a typed LoadResult -> `record_outcome` (Succeeded | Failed, history, watermark) -> the
worker's materialisation and checks. One table's failure fails that table only, and the run ends
with a failure that lists exactly which tables failed and why.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    FreshnessPolicy,
    MaterializeResult,
    multi_asset,
)

from control_db.schedule import next_fire
from dataloader_contract.result import CDC_LAG_SPEC, CHECK_SPECS
from dataloader_defs.control_snapshot import TableRow
from dataloader_defs.defs.loader import TableLoader
from dataloader_defs.defs.run_tags import LOAD_ASSET_NAME

STATE_TAG = "dataloader/state"
PII_TAG = "dataloader/pii"  # "hashed": some columns land as HMAC-SHA-256 (filter: tag:dataloader/pii=hashed)
HASHED = "HMAC-SHA-256, hex"
PAUSED = (
    "Paused (is_active = false): not loaded on its schedule; resume it with the dataloader_resume job "
    "or `UPDATE dataloader.table_control SET is_active = true`; materialising it by hand loads it once"
)


class LoadRunConfig(Config):
    """The Queued attempts a sensor opened, by control_key; empty for a run launched by hand."""

    attempts: dict[str, int] = {}


@lru_cache(maxsize=4096)
def _freshness(cron: str, timezone: str) -> FreshnessPolicy | None:
    """Fresh when materialised within one cron period before each fire of the cron. Cached: tables
    share a few crons, and Dagster's policy costs milliseconds to build (10,000 tables: a minute)."""
    try:
        first = next_fire(cron, timezone, datetime.now(UTC))
        period = next_fire(cron, timezone, first) - first
        return FreshnessPolicy.cron(
            deadline_cron=cron, lower_bound_delta=max(period, timedelta(minutes=1)), timezone=timezone
        )
    except Exception:  # an unusual cron Dagster cannot express: the worker's freshness check remains
        return None


def asset_spec(row: TableRow) -> AssetSpec:
    """The asset of one control row: key from destination_table, group = source, kinds, metadata."""
    source_table = ".".join(p for p in (row.source_schema, row.source_table) if p)
    metadata: dict[str, Any] = {
        "control_key": row.control_key,
        "source_database": f"{row.db_config_key} ({row.db_type})",
        "source_table": source_table,
        "strategy": row.load_strategy,
        "cron": f"{row.cron} ({row.cron_timezone})",
    }
    if row.primary_keys:
        metadata["primary_keys"] = ", ".join(row.primary_keys)
    if row.include_columns:
        metadata["include_columns"] = ", ".join(row.include_columns)
    if row.exclude_columns:
        metadata["exclude_columns"] = ", ".join(row.exclude_columns)
    if row.hash_columns:
        metadata["hash_columns"] = f"{', '.join(row.hash_columns)} ({HASHED})"
    if row.partition_by:
        metadata["partition_by"] = ", ".join(row.partition_by)
    metadata["schema_policy"] = row.schema_policy
    if row.history_mode == "scd2":
        metadata["history"] = "scd2: every version kept (_valid_from, _valid_to, _is_current)"
    loaded = row.load_strategy
    if row.chunk_column and row.load_strategy == "incremental":  # a chunked_backfill that handed over
        metadata["backfill"] = f"chunked_backfill on {row.chunk_column}: done, handed over to incremental"
        loaded = "incremental since its chunked_backfill finished"
    description = f"{source_table} from source {row.db_config_key} ({row.db_type}), loaded {loaded}."
    tags = {}
    if row.hash_columns:
        tags[PII_TAG] = "hashed"
        description += f" Hashed ({HASHED}): {', '.join(row.hash_columns)}."
    if not row.is_active:
        metadata["state"] = PAUSED
        tags[STATE_TAG] = "paused"
        description = f"{PAUSED}. {description}"
        if row.load_strategy == "cdc":
            # Nothing drops the slot by itself (DESIGN: never silently), so say what it costs.
            metadata["cdc_slot"] = (
                "kept while paused: the source retains its change log for it; "
                f"`dataloader cdc-drop {row.control_key}` drops it (a later load then needs load_full)"
            )
            description += (
                f" Its change-capture position still holds the source's log: {metadata['cdc_slot']}."
            )
    return AssetSpec(
        key=AssetKey(row.asset_path),
        group_name=row.db_config_key,
        kinds={"delta", row.db_type},
        description=description,
        metadata=metadata,
        tags=tags,
        skippable=True,
        # A paused table is not loaded on its schedule: no freshness to miss.
        freshness_policy=_freshness(row.cron, row.cron_timezone) if row.is_active else None,
    )


def build_load_assets(rows: Sequence[TableRow]):
    """The `dataloader_table_load` multi-asset over `rows` (None when there is no row)."""
    if not rows:
        return None
    specs = [asset_spec(row) for row in rows]
    keys = {AssetKey(row.asset_path): row.control_key for row in rows}
    check_specs = [
        AssetCheckSpec(spec.name, asset=key, blocking=spec.blocking, description=spec.description)
        for key in keys
        for spec in CHECK_SPECS
    ]
    check_specs += [
        AssetCheckSpec(
            CDC_LAG_SPEC.name, asset=AssetKey(row.asset_path), description=CDC_LAG_SPEC.description
        )
        for row in rows
        if row.load_strategy == "cdc"
    ]

    @multi_asset(
        name=LOAD_ASSET_NAME,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        # Dagster would check every check spec's key against a *list* of the asset keys: quadratic,
        # 6.5 s of a 10,000-table load. The specs are built from the same keys just above.
        allow_arbitrary_check_specs=True,
    )
    def dataloader_table_load(
        context: AssetExecutionContext, config: LoadRunConfig, loader: TableLoader
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        """Load the selected tables, each through its own Pipes worker and lifecycle."""
        yield from loader.load(context, keys, config.attempts)

    return dataloader_table_load
