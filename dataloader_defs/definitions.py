"""The DataLoader code location: assembles Definitions from dataloader_defs.defs; nothing else."""

from dagster import Definitions

from dataloader_defs.defs.assets import dataloader_table_load
from dataloader_defs.defs.jobs import dataloader_retry_analysis, landing_table_git_job, load_job
from dataloader_defs.defs.maintenance_job import dataloader_maintenance_job
from dataloader_defs.defs.resources import default_resources
from dataloader_defs.defs.sensors import ALL_SENSORS

defs = Definitions(
    assets=[dataloader_table_load],
    jobs=[load_job, dataloader_retry_analysis, landing_table_git_job, dataloader_maintenance_job],
    sensors=ALL_SENSORS,
    resources=default_resources(),
)
