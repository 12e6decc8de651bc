"""TableLoader: the resource that loads the tables a run selects.

It owns everything about processes that a load run needs: the concurrency (DATALOADER_RUN_CONCURRENCY
tables at a time, each through its own Pipes worker and lifecycle), the worker launcher (the Pipes
client the workers run with: local processes, Kubernetes pods or Databricks runs), and stopping the
workers when the run is interrupted. One table's failure fails that table only; the run then ends
with a Failure that lists exactly which tables failed and why.
"""

from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from dagster import (
    AssetCheckResult,
    AssetExecutionContext,
    AssetKey,
    ConfigurableResource,
    Failure,
    MaterializeResult,
    ResourceDependency,
)
from pydantic import Field

from dataloader_defs.defs.loader.launcher import WorkerLauncher
from dataloader_defs.defs.loader.lifecycle import (
    failure_metadata,
    failure_observation,
    failure_summary,
    load_table,
)
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings
from dataloader_defs.defs.settings import env_int

WORKER_STOP_GRACE_S = 10.0


def concurrency() -> int:
    """How many tables of one run load at once (DATALOADER_RUN_CONCURRENCY, default 4)."""
    value = env_int("DATALOADER_RUN_CONCURRENCY")
    if value < 1:
        raise ValueError(f"DATALOADER_RUN_CONCURRENCY={value} must be at least 1")
    return value


class TableLoader(ConfigurableResource):
    """Loads the selected tables of a run, each through its own Pipes worker and lifecycle."""

    control_db: ControlDatabase
    settings: DataloaderSettings
    workers: ResourceDependency[WorkerLauncher]
    stop_grace_s: float = Field(
        default=WORKER_STOP_GRACE_S,
        description="Seconds an interrupted worker gets after SIGINT before SIGKILL",
    )

    def load(
        self, context: AssetExecutionContext, tables: Mapping[AssetKey, str], attempts: Mapping[str, int]
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        """Load the tables of `tables` (asset key -> control_key) the run selected; `attempts` are
        the Queued attempts a sensor opened, by control_key. Yields each worker's reports."""
        selected = [
            (key, control_key) for key, control_key in tables.items() if key in context.selected_asset_keys
        ]
        pool = ThreadPoolExecutor(max_workers=min(concurrency(), len(selected)) or 1)
        loads = []
        try:
            futures = [
                pool.submit(
                    load_table,
                    context,
                    control_key,
                    key,
                    attempts.get(control_key),
                    control_db=self.control_db,
                    settings=self.settings,
                    workers=self.workers,
                )
                for key, control_key in selected
            ]
            for future in futures:
                load = future.result()
                loads.append(load)
                yield from load.reports
                observed = failure_observation(load)
                if observed is not None:
                    context.log_event(observed)
        except BaseException:
            # The run is being terminated (or its step failed): the interruption reaches this thread
            # only, so stop the workers of the tables still loading; each thread then records its
            # table's outcome. Tables not started stay Queued and the run-status sensors fail them.
            self.workers.interrupt(context, grace_s=self.stop_grace_s)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=False)
        summary = failure_summary(loads)
        if summary:
            raise Failure(description=summary, metadata=failure_metadata(loads))
