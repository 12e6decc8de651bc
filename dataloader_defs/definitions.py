"""The DataLoader code location: one asset per active control row, built from the control-table
snapshot (see control_snapshot.py), plus the jobs, sensors and resources; nothing else."""

import logging
import os

from dagster import Definitions, in_process_executor

from dataloader_defs.control_snapshot import load_for_definitions
from dataloader_defs.defs.assets import build_load_assets
from dataloader_defs.defs.jobs import build_load_job, dataloader_retry_analysis, landing_table_git_job
from dataloader_defs.defs.maintenance_job import dataloader_maintenance_job
from dataloader_defs.defs.resources import default_resources
from dataloader_defs.defs.sensors import build_sensors


def build_definitions(url: str | None = None) -> Definitions:
    """Definitions for the control rows in the snapshot (refreshed from the database when it answers)."""
    snapshot, origin = load_for_definitions(url or os.environ.get("DATALOADER_CONTROL_DB_URL"))
    logging.getLogger("dataloader").info(f"{len(snapshot.rows)} table asset(s): {origin}")
    load_assets = build_load_assets(snapshot.rows)
    load_job = build_load_job(load_assets)
    return Definitions(
        assets=[load_assets] if load_assets is not None else [],
        jobs=[
            job
            for job in (
                load_job,
                dataloader_retry_analysis,
                landing_table_git_job,
                dataloader_maintenance_job,
            )
            if job is not None
        ],
        sensors=build_sensors(load_job, snapshot),
        resources=default_resources(),
        # Every job here is one step (the load multi-asset starts its own workers), so a run keeps
        # it in its own process. Dagster's default would start a step process per run, importing
        # Dagster and this code location again: 1.5-2 s of every run a person launches by hand.
        executor=in_process_executor,
    )


defs = build_definitions()
