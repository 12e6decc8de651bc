"""The load resource (TableLoader) and the worker launchers it runs Pipes workers with."""

from dataloader_defs.defs.loader.configured import PIPES_CLIENT_ENV, workers_from_env
from dataloader_defs.defs.loader.launcher import LocalWorkers, WorkerLauncher
from dataloader_defs.defs.loader.local_client import LocalPipesClient
from dataloader_defs.defs.loader.table_loader import TableLoader

__all__ = [
    "PIPES_CLIENT_ENV",
    "LocalPipesClient",
    "LocalWorkers",
    "TableLoader",
    "WorkerLauncher",
    "workers_from_env",
]
