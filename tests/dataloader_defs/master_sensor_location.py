"""A code location holding the load assets and the real master sensor, built at load time from the
control table named by DATALOADER_CONTROL_DB_URL (for tests that run Dagster's sensor daemon code)."""

import os
import tempfile

import dagster as dg
from defs_support import table_defs

from dataloader_defs.defs.loader import TableLoader, workers_from_env
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings


@dg.definitions
def defs() -> dg.Definitions:
    url = os.environ["DATALOADER_CONTROL_DB_URL"]
    assets, master = table_defs(url)
    control_db = ControlDatabase(url=url)
    settings = DataloaderSettings(lake_root=tempfile.gettempdir())
    return dg.Definitions(
        assets=[assets],
        sensors=[master],
        resources={
            "control_db": control_db,
            "settings": settings,
            "loader": TableLoader(control_db=control_db, settings=settings, workers=workers_from_env()),
        },
    )
