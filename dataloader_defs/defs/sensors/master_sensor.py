"""master_sensor: queue ready control rows and launch them in runs of up to DATALOADER_RUN_BATCH
tables of one source (a chunked_backfill always runs alone: it can hold a run for hours).

Only rows the code location has an asset for are queued; a row inserted since the last snapshot
waits for the control_table_sensor's reload. The tick costs a few indexed queries.
"""

from collections.abc import Sequence

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
)

from dataloader_defs.control_snapshot import Snapshot, TableRow
from dataloader_defs.defs.resources import ControlDatabase
from dataloader_defs.defs.run_tags import LOAD_ASSET_NAME, run_tags
from dataloader_defs.defs.sensors.circuit_tags import tag_probe_runs
from dataloader_defs.defs.sensors.polling import polling_sensor
from dataloader_defs.defs.settings import env_int


def plan_runs(queued: Sequence, tables: dict[str, TableRow], batch: int) -> list[RunRequest]:
    """Group queued loads into run requests: one source per run, at most `batch` tables, backfills alone."""
    groups: dict[tuple[str, bool], list] = {}
    for load in queued:
        alone = load.load_strategy == "chunked_backfill"
        groups.setdefault((load.db_config_key, alone), []).append(load)
    requests = []
    for (source, alone), loads in sorted(groups.items()):
        size = 1 if alone else max(1, batch)
        for start in range(0, len(loads), size):
            chunk = loads[start : start + size]
            attempts = {load.control_key: load.history_id for load in chunk}
            requests.append(
                RunRequest(
                    run_key="load:" + ",".join(str(load.history_id) for load in chunk),
                    asset_selection=[AssetKey(tables[load.control_key].asset_path) for load in chunk],
                    run_config={"ops": {LOAD_ASSET_NAME: {"config": {"attempts": attempts}}}},
                    tags=run_tags(source, attempts),
                )
            )
    return requests


def build_master_sensor(load_assets: AssetsDefinition, snapshot: Snapshot) -> SensorDefinition:
    """The master sensor for the tables of `snapshot`, launching runs of `load_assets`' tables.

    It targets the assets, not a job of its own: Dagster runs a selection as its implicit asset job,
    which every code location builds anyway (a second job over 10,000 assets cost a second of every
    code-location load)."""
    tables = {row.control_key: row for row in snapshot.rows}

    @polling_sensor(
        name="master_sensor",
        asset_selection=AssetSelection.assets(load_assets),
        every="DATALOADER_MASTER_INTERVAL_S",
        description="Queues ready control rows (at most DATALOADER_MASTER_BATCH a tick) and launches them "
        "in runs of up to DATALOADER_RUN_BATCH tables of one source.",
    )
    def master_sensor(context: SensorEvaluationContext, control_db: ControlDatabase) -> SensorResult:
        from control_db import queries

        if not tables:
            return SensorResult(skip_reason=SkipReason("the code location has no table assets yet"))
        with control_db.connect("dagster-master") as conn:
            queued = queries.queue_ready_tables(
                conn, limit=env_int("DATALOADER_MASTER_BATCH"), only_keys=list(tables)
            )
            probes = queries.circuit_probes(conn) if queued else {}
        requests = tag_probe_runs(plan_runs(queued, tables, env_int("DATALOADER_RUN_BATCH")), probes)
        return SensorResult(
            run_requests=requests, skip_reason=None if requests else SkipReason("no control row is ready")
        )

    return master_sensor
