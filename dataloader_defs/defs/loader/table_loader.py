"""TableLoader: the resource that loads the tables a run selects.

It owns everything about processes that a load run needs: the concurrency (DATALOADER_RUN_CONCURRENCY
tables at a time, each through its own Pipes worker and lifecycle), the worker launcher (the Pipes
client the workers run with: local processes, Kubernetes pods or Databricks runs), and stopping the
workers when the run is interrupted. One table's failure fails that table only; the run then ends
with a Failure that lists exactly which tables failed and why.
"""

from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait

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

from dataloader_defs.defs.loader.interruption import RunInterruption
from dataloader_defs.defs.loader.launcher import WorkerLauncher
from dataloader_defs.defs.loader.lifecycle import (
    failure_metadata,
    failure_observation,
    failure_summary,
    load_table,
)
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings
from dataloader_defs.defs.run_tags import hand_run_tags
from dataloader_defs.defs.settings import env_int

WORKER_STOP_GRACE_S = 10.0
WORKER_RECHECK_S = 0.5  # how often an interrupted run looks for a worker started after its stop


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
        tags = hand_run_tags(dict(context.run.tags), len(selected))
        if tags:  # the UI lists it as `__ASSET_JOB`: say it was started by hand, and how big it is
            context.instance.add_run_tags(context.run.run_id, tags)
        pool = ThreadPoolExecutor(max_workers=min(concurrency(), len(selected)) or 1)
        interruption = RunInterruption()
        loads = []
        futures = []
        try:
            for key, control_key in selected:
                future = pool.submit(
                    load_table,
                    context,
                    control_key,
                    key,
                    attempts.get(control_key),
                    control_db=self.control_db,
                    settings=self.settings,
                    workers=self.workers,
                    interruption=interruption,
                )
                futures.append((control_key, future))
            for _, future in futures:
                load = future.result()
                loads.append(load)
                yield from load.reports
                observed = failure_observation(load)
                if observed is not None:
                    context.log_event(observed)
        except BaseException as exc:
            # The run is being terminated (or its step failed): the interruption reaches this thread
            # only, so say so to the tables' threads (one record for all), stop the workers of the
            # tables still loading (each thread then records its table) and fail the queued attempts
            # no thread started.
            interruption.note(type(exc).__name__)
            pool.shutdown(wait=False, cancel_futures=True)
            self._stop_workers(context, [future for _, future in futures])
            unstarted = [key for key, future in futures if future.cancelled() and attempts.get(key)]
            self._fail_unstarted(context, unstarted, attempts, interruption)
            raise
        finally:
            pool.shutdown(wait=False)
        summary = failure_summary(loads)
        if summary:
            raise Failure(description=summary, metadata=failure_metadata(loads))

    def _stop_workers(self, context: AssetExecutionContext, futures: list[Future]) -> None:
        """Stop the running workers until every table's thread has ended: a thread that was starting
        its worker as the interruption came (a fork that failed because the fork server got the same
        Ctrl-C, then a fresh worker) starts it after the first stop, and would otherwise keep the run
        waiting for a load nobody stops."""
        pending = [future for future in futures if not future.done()]
        while pending:
            self.workers.interrupt(context, grace_s=self.stop_grace_s)
            pending = list(wait(pending, timeout=WORKER_RECHECK_S).not_done)

    def _fail_unstarted(
        self,
        context: AssetExecutionContext,
        control_keys: list[str],
        attempts: Mapping[str, int],
        interruption: RunInterruption,
    ) -> None:
        """Record the interruption on the queued attempts of this run that no thread started (only
        while still Queued: a hand load may have taken one over). What fails here is left to the
        run-status sensors."""
        from control_db import queries

        if not control_keys:
            return
        try:
            with self.control_db.connect("dagster-asset") as conn:
                for key in control_keys:
                    failure = interruption.failure(key)
                    queries.mark_failed(
                        conn,
                        key,
                        message=failure.message,
                        kind=failure.kind,
                        code=failure.code,
                        history_id=attempts[key],
                        run_id=context.run.run_id,
                        queued_only=True,
                    )
        except Exception as exc:  # the interruption must still reach Dagster
            context.log.warning(f"could not record the interruption on {', '.join(control_keys)}: {exc}")
