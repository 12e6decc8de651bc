"""A code location holding the load assets and the real master sensor, built at load time from the
control table named by DATALOADER_CONTROL_DB_URL (for tests that run Dagster's sensor daemon code)."""

import os
import tempfile

import dagster as dg
from dataloader_defs.defs.pipes_client import ForkingPipesClient
from defs_support import table_defs

from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings, worker_command


@dg.definitions
def defs() -> dg.Definitions:
    url = os.environ["DATALOADER_CONTROL_DB_URL"]
    assets, master = table_defs(url)
    return dg.Definitions(
        assets=[assets],
        sensors=[master],
        resources={
            "control_db": ControlDatabase(url=url),
            "settings": DataloaderSettings(lake_root=tempfile.gettempdir()),
            "pipes_client": ForkingPipesClient(worker_command()),
        },
    )
