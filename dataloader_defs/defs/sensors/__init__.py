"""Sensors: one per file, each thin — it asks control_db.queries and returns a SensorResult."""

from dagster import AssetsDefinition, SensorDefinition

from dataloader_defs.control_snapshot import Snapshot
from dataloader_defs.defs.sensors.circuit_monitor import build_circuit_monitor
from dataloader_defs.defs.sensors.control_table_sensor import build_control_table_sensor
from dataloader_defs.defs.sensors.failed_monitor import failed_monitor
from dataloader_defs.defs.sensors.landing_table_monitor import landing_table_monitor
from dataloader_defs.defs.sensors.longqueued_monitor import longqueued_monitor
from dataloader_defs.defs.sensors.longrunning_monitor import longrunning_monitor
from dataloader_defs.defs.sensors.maintenance_sensor import maintenance_sensor
from dataloader_defs.defs.sensors.master_sensor import build_master_sensor
from dataloader_defs.defs.sensors.reconcile_monitor import reconcile_monitor
from dataloader_defs.defs.sensors.run_status import load_run_canceled_sensor, load_run_failure_sensor
from dataloader_defs.defs.sensors.table_state_monitor import table_state_monitor

MONITORS = [
    longqueued_monitor,
    longrunning_monitor,
    failed_monitor,
    landing_table_monitor,
    reconcile_monitor,
    load_run_failure_sensor,
    load_run_canceled_sensor,
    maintenance_sensor,
    table_state_monitor,
]


def build_sensors(load_assets: AssetsDefinition | None, snapshot: Snapshot) -> list[SensorDefinition]:
    """Every sensor of the code location; the master sensor loads `snapshot`'s tables (`load_assets`)."""
    sensors = [build_control_table_sensor(snapshot), *MONITORS, build_circuit_monitor(snapshot)]
    if load_assets is not None:
        sensors.insert(0, build_master_sensor(load_assets, snapshot))
    return sensors


__all__ = ["MONITORS", "build_sensors"]
