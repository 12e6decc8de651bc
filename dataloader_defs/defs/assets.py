"""dataloader_table_load: one dynamically partitioned asset, one partition per control_key.

A run reads as: begin the attempt (Queued -> In Progress) -> the Pipes worker loads and reports a
typed LoadResult -> `record_outcome` (Succeeded | Failed, history, watermark) -> the worker's
materialisation and checks. The control database is not held open while the worker runs.
"""

from collections.abc import Iterator
from typing import Any

from dagster import (
    AssetExecutionContext,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesClient,
    ResourceParam,
    asset,
)
from dagster._core.errors import DagsterPipesExecutionError

from control_db.lifecycle import Refusal, begin_attempt, record_outcome
from dataloader_defs.defs import asset_checks as checks
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings, worker_command
from pipes_workers.request import LoadRequest
from pipes_workers.result import LoadFailure, LoadResult, failed_result, read_load_result

control_keys = DynamicPartitionsDefinition(name="control_keys")

TAG_CONTROL_KEY = "dataloader/control_key"
TAG_SOURCE = "dataloader/source"
TAG_STRATEGY = "dataloader/strategy"
TAG_HISTORY_ID = "dataloader/history_id"


def run_tags(
    control_key: str, db_config_key: str, strategy: str, history_id: int | None = None
) -> dict[str, str]:
    """The tags every load run carries; `dataloader/source` drives per-source concurrency limits."""
    tags = {TAG_CONTROL_KEY: control_key, TAG_SOURCE: db_config_key, TAG_STRATEGY: strategy}
    if history_id is not None:
        tags[TAG_HISTORY_ID] = str(history_id)
    return tags


def run_worker(
    context: AssetExecutionContext,
    pipes_client: PipesClient,
    request: LoadRequest,
    settings: DataloaderSettings,
) -> tuple[LoadResult, Any]:
    """Run the Pipes worker for `request`; its LoadResult (a failed one when it died) and the invocation."""
    try:
        invocation = pipes_client.run(
            context=context,
            command=worker_command(),
            extras={"load_request": request.to_dict()},
            env=settings.worker_env(),
        )
    except DagsterPipesExecutionError as exc:
        failure = LoadFailure(
            kind="transient",
            code="worker_died",
            message=f"{request.control_key}: the worker process ended before it reported a result ({exc})",
        )
        return failed_result(request.control_key, request.load_strategy, failure), None
    result = read_load_result(invocation.get_custom_messages())
    if result is None:
        failure = LoadFailure(
            kind="transient",
            code="worker_died",
            message=f"{request.control_key}: the worker reported no result",
        )
        return failed_result(request.control_key, request.load_strategy, failure), None
    return result, invocation


@asset(
    partitions_def=control_keys,
    check_specs=checks.check_specs(control_keys),
    group_name="dataloader",
    kinds={"delta", "python"},
    output_required=False,
    description="Loads one control row (partition = control_key) from its source into its Delta table.",
)
def dataloader_table_load(
    context: AssetExecutionContext,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
    pipes_client: ResourceParam[PipesClient],
) -> Iterator[MaterializeResult]:
    """Run one load through the Pipes worker and record the outcome in the control database."""
    control_key = context.partition_key
    tag = context.run.tags.get(TAG_HISTORY_ID)
    run_id = context.run.run_id
    attempt = begin_attempt(
        control_db.url,
        control_key,
        run_id=run_id,
        history_id=int(tag) if tag else None,
        run_url=settings.run_url(run_id),
        component="dagster-asset",
    )
    if isinstance(attempt, Refusal):
        if attempt.taken_over_by:
            context.log.info(f"{attempt.reason}: this run ends without loading")
            return
        raise Failure(description=attempt.reason)
    row = attempt.row
    if TAG_CONTROL_KEY not in context.run.tags:  # launched by hand: tag it like a sensor run
        context.instance.add_run_tags(run_id, run_tags(control_key, row.db_config_key, row.load_strategy))
    context.log.info(
        f"{control_key}: In Progress (attempt {attempt.history_id}, strategy {row.load_strategy})"
    )
    request = LoadRequest.from_control_row(row, attempt.source, lake_root=settings.lake_root, run_id=run_id)
    try:
        result, invocation = run_worker(context, pipes_client, request, settings)
    except BaseException as exc:  # the run was terminated or interrupted while the worker ran
        failure = LoadFailure(
            kind="transient",
            code="run_interrupted",
            message=f"{control_key}: run interrupted ({type(exc).__name__})",
        )
        record_outcome(control_db.url, attempt, failed_result(control_key, row.load_strategy, failure))
        raise
    recorded = record_outcome(control_db.url, attempt, result, component="dagster-asset")
    if result.error is not None:
        raise Failure(
            description=result.error.message,
            metadata={
                "error_kind": result.error.kind,
                "error_code": MetadataValue.text(result.error.code or "-"),
            },
        )
    if recorded.status == "not recorded":
        context.log.warning(f"{control_key}: {recorded.detail}")
    context.log.info(f"{control_key}: {result.status_message or 'Succeeded'}")
    yield invocation.get_materialize_result(implicit_materialization=False)
