"""Every active control row is its own asset; `dataloader_table_load` is the one subsettable
multi-asset that loads whichever of them a run selects.

Per table, a run reads as: begin the attempt (Queued -> In Progress) -> the Pipes worker loads and
reports a typed LoadResult -> `record_outcome` (Succeeded | Failed, history, watermark) -> the
worker's materialisation and checks. Tables of one run load concurrently (DATALOADER_RUN_CONCURRENCY
at a time), each in its own worker process; one table's failure fails that table only, and the run
ends with a failure that lists exactly which tables failed and why. The control database is not held
open while workers run.
"""

import contextlib
import os
import signal
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    PipesClient,
    ResourceParam,
    RunsFilter,
    multi_asset,
)
from dagster._core.errors import DagsterPipesExecutionError

from control_db.lifecycle import Attempt, Refusal, begin_attempt, record_outcome
from control_db.schedule import next_fire
from dataloader_defs.control_snapshot import TableRow
from dataloader_defs.defs.pipes_client import forked_worker_pids
from dataloader_defs.defs.resources import WORKER_MODULE, ControlDatabase, DataloaderSettings, worker_command
from pipes_workers.request import LoadRequest
from pipes_workers.result import CHECK_SPECS, LoadFailure, LoadResult, failed_result, read_load_result

LOAD_ASSET_NAME = "dataloader_table_load"
TAG_SOURCE = "dataloader/source"
TAG_TABLES = "dataloader/tables"
# One tag per queued attempt a run carries (value: control_key). Dagster allows one "/" in a tag
# key, so the history id follows a dot; runs launched before this change used a second "/".
ATTEMPT_TAG_PREFIX = "dataloader/attempt."
LEGACY_ATTEMPT_TAG_PREFIX = "dataloader/attempt/"


def attempt_of_tag(tag: str) -> int | None:
    """The history id an attempt tag names, or None for any other tag."""
    for prefix in (ATTEMPT_TAG_PREFIX, LEGACY_ATTEMPT_TAG_PREFIX):
        if tag.startswith(prefix) and tag[len(prefix) :].isdigit():
            return int(tag[len(prefix) :])
    return None


CONCURRENCY_ENV = "DATALOADER_RUN_CONCURRENCY"
DEFAULT_CONCURRENCY = 4
WORKER_STOP_GRACE_S = 10.0


def attempt_tag(history_id: int) -> str:
    """The run tag that says a run carries queued attempt `history_id` (the reconcile pass looks for it)."""
    return f"{ATTEMPT_TAG_PREFIX}{history_id}"


def runs_of_attempt(
    instance: DagsterInstance, history_id: int, control_key: str, statuses: Sequence[DagsterRunStatus] = ()
) -> list[DagsterRun]:
    """The runs that carry queued attempt `history_id` of `control_key` (either tag spelling)."""
    runs: list[DagsterRun] = []
    for prefix in (ATTEMPT_TAG_PREFIX, LEGACY_ATTEMPT_TAG_PREFIX):
        found = RunsFilter(tags={f"{prefix}{history_id}": control_key}, statuses=list(statuses))
        runs.extend(instance.get_runs(filters=found))
    return runs


def run_tags(db_config_key: str, attempts: dict[str, int]) -> dict[str, str]:
    """Tags of a load run: its source (per-source concurrency limit in dagster.yaml) and its attempts."""
    tags = {TAG_SOURCE: db_config_key, TAG_TABLES: str(len(attempts))}
    tags.update({attempt_tag(history_id): key for key, history_id in attempts.items()})
    return tags


class LoadRunConfig(Config):
    """The Queued attempts a sensor opened, by control_key; empty for a run launched by hand."""

    attempts: dict[str, int] = {}


@lru_cache(maxsize=4096)
def _freshness(cron: str, timezone: str) -> FreshnessPolicy | None:
    """Fresh when materialised within one cron period before each fire of the cron. Cached: tables
    share a few crons, and Dagster's policy costs milliseconds to build (10,000 tables: a minute)."""
    try:
        first = next_fire(cron, timezone, datetime.now(UTC))
        period = next_fire(cron, timezone, first) - first
        return FreshnessPolicy.cron(
            deadline_cron=cron, lower_bound_delta=max(period, timedelta(minutes=1)), timezone=timezone
        )
    except Exception:  # an unusual cron Dagster cannot express: the worker's freshness check remains
        return None


def asset_spec(row: TableRow) -> AssetSpec:
    """The asset of one control row: key from destination_table, group = source, kinds, metadata."""
    source_table = ".".join(p for p in (row.source_schema, row.source_table) if p)
    metadata: dict[str, Any] = {
        "control_key": row.control_key,
        "source_database": f"{row.db_config_key} ({row.db_type})",
        "source_table": source_table,
        "strategy": row.load_strategy,
        "cron": f"{row.cron} ({row.cron_timezone})",
    }
    if row.primary_keys:
        metadata["primary_keys"] = ", ".join(row.primary_keys)
    return AssetSpec(
        key=AssetKey(row.asset_path),
        group_name=row.db_config_key,
        kinds={"delta", row.db_type},
        description=f"{source_table} from source {row.db_config_key} ({row.db_type}), loaded {row.load_strategy}.",
        metadata=metadata,
        skippable=True,
        freshness_policy=_freshness(row.cron, row.cron_timezone),
    )


@dataclass(frozen=True)
class TableLoad:
    """One table's load inside a run: its outcome and what the worker reported to Dagster."""

    control_key: str
    asset_key: AssetKey
    result: LoadResult | None
    reports: Sequence[Any] = ()
    refusal: str | None = None


def _worker_died(request: LoadRequest, what: str) -> LoadResult:
    """The failed result of a worker that ended without reporting one (transient: retried)."""
    failure = LoadFailure(kind="transient", code="worker_died", message=f"{request.control_key}: {what}")
    return failed_result(request.control_key, request.load_strategy, failure)


def _run_worker(
    context: AssetExecutionContext,
    pipes_client: PipesClient,
    request: LoadRequest,
    asset_key: AssetKey,
    settings: DataloaderSettings,
) -> tuple[LoadResult, Sequence[Any]]:
    """Run one Pipes worker; its LoadResult (a failed one when the process died) and its reports."""
    try:
        invocation = pipes_client.run(
            context=context,
            command=worker_command(),
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
    pipes_client: PipesClient,
) -> TableLoad:
    """The whole lifecycle of one table in this run."""
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
        return TableLoad(
            control_key, asset_key, None, refusal=attempt.reason if not attempt.taken_over_by else None
        )
    context.log.info(
        f"{control_key}: In Progress (attempt {attempt.history_id}, {attempt.row.load_strategy})"
    )
    return _load_attempt(
        context, attempt, asset_key, control_db=control_db, settings=settings, pipes_client=pipes_client
    )


def _load_attempt(
    context: AssetExecutionContext,
    attempt: Attempt,
    asset_key: AssetKey,
    *,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
    pipes_client: PipesClient,
) -> TableLoad:
    key = attempt.control_key
    request = LoadRequest.from_control_row(
        attempt.row, attempt.source, lake_root=settings.lake_root, run_id=attempt.run_id
    )
    try:
        result, reports = _run_worker(context, pipes_client, request, asset_key, settings)
    except BaseException as exc:  # the run was terminated or interrupted while the worker ran
        failure = LoadFailure(
            kind="transient", code="run_interrupted", message=f"{key}: run interrupted ({type(exc).__name__})"
        )
        record_outcome(control_db.url, attempt, failed_result(key, request.load_strategy, failure))
        raise
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


def _worker_pids() -> list[int]:
    """This process's running Pipes workers: its worker subprocesses (Linux: found through /proc;
    elsewhere none) and the load workers it had forked (pipes_client.py)."""
    me = str(os.getpid())
    pids = [pid for pid in forked_worker_pids() if (_proc_stat(pid) or ["Z"])[0] != "Z"]  # Z: exited
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _proc_stat(int(entry.name))
        if stat is None or stat[1] != me:
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if WORKER_MODULE in command:
            pids.append(int(entry.name))
    return pids


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, parent pid, …), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def interrupt_workers(context: AssetExecutionContext, *, grace_s: float = WORKER_STOP_GRACE_S) -> int:
    """Stop this process's running Pipes workers: SIGINT, then SIGKILL for those still running after
    `grace_s` (a worker blocked inside a driver call does not see SIGINT). Returns how many.

    The subprocess Pipes client forwards a termination only to the worker of the thread it arrives
    in, and with several tables loading at once it arrives in none of them. A killed worker leaves no
    half-written commit: every load is one Delta commit, and the next load resumes from the table.
    """
    pids = _worker_pids()
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and set(pids) & set(_worker_pids()):
        time.sleep(0.2)
    for pid in set(pids) & set(_worker_pids()):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    if pids:
        context.log.warning(f"run interrupted: stopped {len(pids)} running worker(s)")
    return len(pids)


def concurrency() -> int:
    """How many tables of one run load at once."""
    raw = os.environ.get(CONCURRENCY_ENV, "").strip()
    if not raw:
        return DEFAULT_CONCURRENCY
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{CONCURRENCY_ENV}={raw!r} is not an integer") from None
    if value < 1:
        raise ValueError(f"{CONCURRENCY_ENV}={value} must be at least 1")
    return value


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


def build_load_assets(rows: Sequence[TableRow]):
    """The `dataloader_table_load` multi-asset over `rows` (None when there is no active row)."""
    if not rows:
        return None
    specs = [asset_spec(row) for row in rows]
    keys = {AssetKey(row.asset_path): row.control_key for row in rows}
    check_specs = [
        AssetCheckSpec(spec.name, asset=key, blocking=spec.blocking, description=spec.description)
        for key in keys
        for spec in CHECK_SPECS
    ]

    @multi_asset(
        name=LOAD_ASSET_NAME,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        allow_arbitrary_check_specs=True,
    )
    def dataloader_table_load(
        context: AssetExecutionContext,
        config: LoadRunConfig,
        control_db: ControlDatabase,
        settings: DataloaderSettings,
        pipes_client: ResourceParam[PipesClient],
    ) -> Iterator[MaterializeResult | AssetCheckResult]:
        """Load the selected tables, each through its own Pipes worker and lifecycle."""
        selected = [key for key in keys if key in context.selected_asset_keys]
        pool = ThreadPoolExecutor(max_workers=min(concurrency(), len(selected)) or 1)
        loads = []
        try:
            futures = [
                pool.submit(
                    load_table,
                    context,
                    keys[key],
                    key,
                    config.attempts.get(keys[key]),
                    control_db=control_db,
                    settings=settings,
                    pipes_client=pipes_client,
                )
                for key in selected
            ]
            for future in futures:
                load = future.result()
                loads.append(load)
                yield from load.reports
        except BaseException:
            # The run is being terminated (or its step failed): the interruption reaches this thread
            # only, so stop the workers of the tables still loading; each thread then records its
            # table's outcome. Tables not started stay Queued and the run-status sensors fail them.
            interrupt_workers(context)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=False)
        summary = failure_summary(loads)
        if summary:
            raise Failure(description=summary)

    return dataloader_table_load
