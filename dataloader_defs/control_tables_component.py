"""The control table as a Dagster state-backed component: its state is the snapshot of the
control rows, kept in Dagster's versioned defs state storage; its definitions are one asset per row
plus the jobs, sensors and resources that load them.

Loading the code location never touches the control database: it builds from the latest state
version (or, in a run, from the version the run was launched with). `control_table_sensor` writes a
new version when rows change (`write_state_to_path` is what it and `python -m dataloader_defs.state
refresh` call) and asks the code server to reload.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import psycopg
from dagster import Definitions, in_process_executor
from dagster.components import ComponentLoadContext, StateBackedComponent
from dagster.components.utils.defs_state import DefsStateConfig
from dagster_shared.serdes.objects.models.defs_state_info import DefsStateManagementType

from control_db.urls import libpq_url
from dataloader_defs.control_snapshot import Snapshot, read_snapshot

STATE_KEY = "dataloader/control_tables"
CONTROL_URL_ENV = "DATALOADER_CONTROL_DB_URL"
CONNECT_TIMEOUT_S = 5


def read_control_snapshot(url: str) -> Snapshot:
    """The control rows now (raises psycopg.Error when the database does not answer)."""
    with psycopg.connect(
        libpq_url(url),
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
        application_name="dataloader-state",
    ) as conn:
        return read_snapshot(conn)


def build_definitions_from_snapshot(snapshot: Snapshot) -> Definitions:
    """Every Dagster object of the code location for the tables of `snapshot`."""
    from dataloader_defs.defs.assets import build_load_assets
    from dataloader_defs.defs.circuit_action_jobs import CIRCUIT_JOBS
    from dataloader_defs.defs.jobs import dataloader_retry_analysis, landing_table_git_job
    from dataloader_defs.defs.maintenance_job import dataloader_maintenance_job
    from dataloader_defs.defs.resources import default_resources
    from dataloader_defs.defs.sensors import build_sensors
    from dataloader_defs.defs.table_action_jobs import ACTION_JOBS

    load_assets = build_load_assets(snapshot.rows)
    return Definitions(
        assets=[load_assets] if load_assets is not None else [],
        jobs=[
            dataloader_retry_analysis,
            landing_table_git_job,
            dataloader_maintenance_job,
            *ACTION_JOBS,
            *CIRCUIT_JOBS,
        ],
        sensors=build_sensors(load_assets, snapshot),
        resources=default_resources(),
        # Every job here is one step (the load multi-asset starts its own workers), so a run keeps
        # it in its own process. Dagster's default would start a step process per run, importing
        # Dagster and this code location again: 1.5-2 s of every run a person launches by hand.
        executor=in_process_executor,
    )


class ControlTablesComponent(StateBackedComponent):
    """One asset per control row (paused ones say so), from the control-table snapshot in Dagster's state storage."""

    def __init__(self, control_db_url: str | None = None) -> None:
        self._control_db_url = control_db_url

    @property
    def defs_state_config(self) -> DefsStateConfig:
        # refresh_if_dev off: `dagster dev` would otherwise read the control database at every load,
        # and fail to load while it is down; `make dev` writes the first version before it starts.
        return DefsStateConfig(
            key=STATE_KEY,
            management_type=DefsStateManagementType.VERSIONED_STATE_STORAGE,
            refresh_if_dev=False,
        )

    def control_db_url(self) -> str:
        """The control database URL (constructor, else DATALOADER_CONTROL_DB_URL)."""
        url = self._control_db_url or os.environ.get(CONTROL_URL_ENV)
        if not url:
            raise RuntimeError(f"{CONTROL_URL_ENV} is not set: cannot read the control table")
        return url

    def write_state_to_path(self, state_path: Path) -> None:
        """Read the control rows and write them as this component's state."""
        state_path.write_text(read_control_snapshot(self.control_db_url()).to_json(), encoding="utf-8")

    def build_defs_from_state(self, context: ComponentLoadContext, state_path: Path | None) -> Definitions:
        """The definitions of the stored snapshot (no table asset before the first state is written)."""
        if state_path is None:
            snapshot = Snapshot(fingerprint="none")
            origin = "no state written yet (control_table_sensor writes the first)"
        else:
            snapshot = Snapshot.from_json(state_path.read_text(encoding="utf-8"))
            origin = "from Dagster's defs state storage"
        logging.getLogger("dataloader").info(f"{len(snapshot.rows)} table asset(s) {origin}")
        return build_definitions_from_snapshot(snapshot)
