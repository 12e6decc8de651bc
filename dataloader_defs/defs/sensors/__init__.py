"""Sensors: one per file, each thin — it asks control_db.queries and returns a SensorResult."""

from dataloader_defs.defs.sensors.failed_monitor import failed_monitor
from dataloader_defs.defs.sensors.landing_table_monitor import landing_table_monitor
from dataloader_defs.defs.sensors.longqueued_monitor import longqueued_monitor
from dataloader_defs.defs.sensors.longrunning_monitor import longrunning_monitor
from dataloader_defs.defs.sensors.maintenance_sensor import maintenance_sensor
from dataloader_defs.defs.sensors.master_sensor import master_sensor
from dataloader_defs.defs.sensors.reconcile_monitor import reconcile_monitor
from dataloader_defs.defs.sensors.run_status import load_run_canceled_sensor, load_run_failure_sensor

ALL_SENSORS = [
    master_sensor,
    longqueued_monitor,
    longrunning_monitor,
    failed_monitor,
    landing_table_monitor,
    reconcile_monitor,
    load_run_failure_sensor,
    load_run_canceled_sensor,
    maintenance_sensor,
]

__all__ = ["ALL_SENSORS"]
