"""One table's load inside a run: begin the attempt (Queued -> In Progress), run its Pipes worker,
record the typed LoadResult (Succeeded | Failed, history, watermark) and keep what the worker
reported to Dagster. The control database is not held open while the worker runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dagster import AssetExecutionContext, AssetKey, AssetObservation, MetadataValue
from dagster._core.errors import DagsterPipesExecutionError

from control_db.lifecycle import Attempt, Refusal, begin_attempt, record_outcome
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadFailure, LoadResult, failed_result, read_load_result
from dataloader_defs.defs.loader.interruption import SETTLE_S, RunInterruption
from dataloader_defs.defs.loader.launcher import WORKER_MODULE, WorkerLauncher
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings


@dataclass(frozen=True)
class TableLoad:
    """One table's load inside a run: its outcome and what the worker reported to Dagster."""

    control_key: str
    asset_key: AssetKey
    result: LoadResult | None
    reports: Sequence[Any] = ()
    refusal: str | None = None


WORKER_DIED = "worker_died"


def _worker_died(request: LoadRequest, what: str) -> LoadResult:
    """The failed result of a worker that ended without reporting one (transient: retried)."""
    failure = LoadFailure(kind="transient", code=WORKER_DIED, message=f"{request.control_key}: {what}")
    return failed_result(request.control_key, request.load_strategy, failure)


def _as_interruption(result: LoadResult, interruption: RunInterruption) -> LoadResult:
    """A failure while the run is being interrupted is that interruption's one record. A worker that
    ended without a result waits for the run to say so (the same Ctrl-C may have stopped it first)."""
    error = result.error
    if error is None:
        return result  # committed: a load that finished is recorded as it finished
    settle_s = SETTLE_S if error.code == WORKER_DIED else 0.0
    if interruption.cause(settle_s) is None:
        return result
    return failed_result(result.control_key, result.strategy, interruption.failure(result.control_key))


def _run_worker(
    context: AssetExecutionContext,
    workers: WorkerLauncher,
    request: LoadRequest,
    asset_key: AssetKey,
    settings: DataloaderSettings,
) -> tuple[LoadResult, Sequence[Any]]:
    """Run one Pipes worker; its LoadResult (a failed one when the process died) and its reports."""
    try:
        invocation = workers.run_module(
            context,
            WORKER_MODULE,
            extras={"load_request": request.to_dict(), "asset_key": asset_key.to_user_string()},
            env=settings.worker_env(),
        )
    except DagsterPipesExecutionError as exc:
        return _worker_died(request, f"the worker process ended before it reported a result ({exc})"), ()
    result = read_load_result(invocation.get_custom_messages())
    if result is None:
        return _worker_died(request, "the worker reported no result"), ()
    return result, invocation.get_results(implicit_materializations=False)


def load_table(
    context: AssetExecutionContext,
    control_key: str,
    asset_key: AssetKey,
    history_id: int | None,
    *,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
    workers: WorkerLauncher,
    interruption: RunInterruption,
) -> TableLoad:
    """The whole lifecycle of one table in this run (`interruption`: shared by the run's tables)."""
    run_id = context.run.run_id
    attempt = begin_attempt(
        control_db.url,
        control_key,
        run_id=run_id,
        history_id=history_id,
        run_url=settings.run_url(run_id),
        component="dagster-asset",
    )
    if isinstance(attempt, Refusal):
        if attempt.waiting:  # the source's circuit is open: not this table's failure
            context.log.warning(attempt.reason)
        quiet = attempt.taken_over_by or attempt.waiting
        return TableLoad(control_key, asset_key, None, refusal=None if quiet else attempt.reason)
    context.log.info(
        f"{control_key}: In Progress (attempt {attempt.history_id}, {attempt.row.load_strategy})"
    )
    return _load_attempt(
        context,
        attempt,
        asset_key,
        control_db=control_db,
        settings=settings,
        workers=workers,
        interruption=interruption,
    )


def _load_attempt(
    context: AssetExecutionContext,
    attempt: Attempt,
    asset_key: AssetKey,
    *,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
    workers: WorkerLauncher,
    interruption: RunInterruption,
) -> TableLoad:
    key = attempt.control_key
    request = LoadRequest.from_control_row(
        attempt.row, attempt.source, lake_root=settings.lake_root, run_id=attempt.run_id
    )
    try:
        if interruption.cause() is None:
            result, reports = _run_worker(context, workers, request, asset_key, settings)
        else:  # the run is being stopped: start no worker (the run would wait for it)
            result, reports = failed_result(key, request.load_strategy, interruption.failure(key)), ()
    except BaseException as exc:  # the run was terminated or interrupted while the worker ran
        interruption.note(type(exc).__name__)
        failure = interruption.failure(key)
        record_outcome(control_db.url, attempt, failed_result(key, request.load_strategy, failure))
        raise
    result = _as_interruption(result, interruption)
    recorded = record_outcome(control_db.url, attempt, result, component="dagster-asset")
    if recorded.status == "not recorded":
        context.log.warning(f"{key}: {recorded.detail}")
    if result.error is not None:
        context.log.error(
            f"{key}: Failed ({result.error.kind}, {result.error.code or 'no code'}): {result.error.message}"
        )
    else:
        context.log.info(f"{key}: {result.status_message or 'Succeeded'}")
    return TableLoad(key, asset_key, result, reports if result.succeeded else ())


def failure_summary(loads: Sequence[TableLoad]) -> str | None:
    """`2 of 12 tables failed: key: message; …` or None when every table succeeded or was skipped."""
    failed = [t for t in loads if (t.result is not None and t.result.error is not None) or t.refusal]
    if not failed:
        return None
    details = "; ".join(
        f"{t.control_key}: {t.refusal or (t.result.error.message if t.result and t.result.error else '')}"
        for t in failed
    )
    return f"{len(failed)} of {len(loads)} tables failed ({len(loads) - len(failed)} succeeded or skipped): {details}"


def failure_observation(load: TableLoad) -> AssetObservation | None:
    """What the run page and the asset page show of a failed table: its error kind, code and message."""
    error = load.result.error if load.result is not None else None
    if error is None:
        return None
    return AssetObservation(
        asset_key=load.asset_key,
        description=f"load failed ({error.kind}, {error.code or 'no code'}): {error.message}",
        metadata={
            "dataloader/state": "failed",
            "control_key": load.control_key,
            "error_kind": error.kind,
            "error_code": error.code or "",
            "error_message": error.message,
        },
    )


def failure_metadata(loads: Sequence[TableLoad]) -> dict[str, Any]:
    """The run failure's metadata: a table of each failed table's kind, code and message (and the
    fields themselves when one table failed)."""
    failed = [(t.control_key, t.result.error) for t in loads if t.result is not None and t.result.error]
    metadata: dict[str, Any] = {}
    if len(failed) == 1:
        _, error = failed[0]
        metadata = {"error_kind": error.kind, "error_code": error.code or "", "error_message": error.message}
    if failed:
        lines = ["| table | kind | code | message |", "| --- | --- | --- | --- |"]
        lines += [f"| {k} | {e.kind} | {e.code or ''} | {e.message.replace('|', '/')} |" for k, e in failed]
        metadata["failed_tables"] = MetadataValue.md("\n".join(lines))
    return metadata
