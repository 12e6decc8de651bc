"""dataloader_table_load: one dynamically partitioned asset, one partition per control_key.

A run walks the status lifecycle (DESIGN §3): In Progress -> Pipes worker -> Succeeded | Failed, and
emits the asset checks for the partition it loaded. Hand-launched runs go through the same path.
"""

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    DagsterEventType,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    PipesClient,
    ResourceParam,
    asset,
)

from dataloader_defs.defs import asset_checks as checks
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings, worker_command
from dataloader_defs.lake import open_table, table_uri

control_keys = DynamicPartitionsDefinition(name="control_keys")

TAG_CONTROL_KEY = "dataloader/control_key"
TAG_SOURCE = "dataloader/source"
TAG_STRATEGY = "dataloader/strategy"
TAG_HISTORY_ID = "dataloader/history_id"
MAX_MESSAGE = 2000


def run_tags(
    control_key: str, db_config_key: str, strategy: str, history_id: int | None = None
) -> dict[str, str]:
    """The tags every load run carries; `dataloader/source` drives per-source concurrency limits."""
    tags = {TAG_CONTROL_KEY: control_key, TAG_SOURCE: db_config_key, TAG_STRATEGY: strategy}
    if history_id is not None:
        tags[TAG_HISTORY_ID] = str(history_id)
    return tags


def build_load_request(
    row: Any, source: Any, *, lake_root: str, run_id: str, history_id: int | None
) -> dict[str, Any]:
    """The Pipes extras `load_request`: the control row and the dbconfig row as stored (secret names only)."""
    from pipes_workers.request import LoadRequest

    request = LoadRequest.from_control_row(
        row, source, lake_root=lake_root, run_id=run_id, history_id=history_id
    )
    return request.to_dict()


def worker_error_message(context: AssetExecutionContext, exc: BaseException) -> str:
    """The worker's own error (`TransientLoadError: …`) from the Pipes closed event, else `exc`."""
    records = context.instance.all_logs(context.run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
    for record in reversed(records):
        event = record.dagster_event
        data = event.engine_event_data if event else None
        error = data.error if data else None
        if error is not None and "[pipes]" in (record.user_message or ""):
            text = error.message.strip()
            name = error.cls_name or ""
            # format_exception_only gives "pkg.module.Class: text"; keep "Class: text".
            if name and ":" in text and text.split(":", 1)[0].endswith(name):
                text = f"{name}:{text.split(':', 1)[1]}"
            return text[:MAX_MESSAGE]
    return f"{type(exc).__name__}: {exc}"[:MAX_MESSAGE]


def _count_before(
    context: AssetExecutionContext, row: Any, source: Any, settings: DataloaderSettings
) -> "checks.SourceFacts | None":
    """The source count just before the load (for the reconciliation bracket); None when unavailable —
    never a reason to fail the load."""
    from dataloader_defs.source_facts import count_source

    if not settings.orchestrator_source_counts:
        return None
    try:
        return count_source(row, source, secrets_dir=settings.resolved_secrets_dir())
    except Exception as exc:
        context.log.warning(
            f"{row.control_key}: source count before the load unavailable: {type(exc).__name__}"
        )
        return None


def _raw(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


@asset(
    partitions_def=control_keys,
    check_specs=checks.check_specs(control_keys),
    group_name="dataloader",
    kinds={"delta", "python"},
    description="Loads one control row (partition = control_key) from its source into its Delta table.",
)
def dataloader_table_load(
    context: AssetExecutionContext,
    control_db: ControlDatabase,
    settings: DataloaderSettings,
    pipes_client: ResourceParam[PipesClient],
) -> MaterializeResult:
    """Run one load through the Pipes worker and record the outcome in the control database."""
    from control_db import queries
    from control_db.schedule import next_fire
    from dataloader_defs.source_facts import count_source, from_worker_metadata

    control_key = context.partition_key
    tag = context.run.tags.get(TAG_HISTORY_ID)
    queued_history_id = int(tag) if tag else None

    with control_db.connect("dagster-asset") as conn:
        row = queries.get_control_row(conn, control_key)
        if row is None:
            raise Failure(f"{control_key}: no such control row in table_control")
        source = queries.get_source_config(conn, row.db_config_key)
        if TAG_CONTROL_KEY not in context.run.tags:  # launched by hand: tag it like a sensor run
            context.instance.add_run_tags(
                context.run.run_id, run_tags(control_key, row.db_config_key, row.load_strategy)
            )
        history_id = queries.mark_in_progress(
            conn,
            control_key,
            run_id=context.run.run_id,
            history_id=queued_history_id,
            run_url=settings.run_url(context.run.run_id),
        )
        if history_id is None:
            raise Failure(
                f"{control_key}: cannot start: last_status is {row.last_status!r}"
                + (f" (history {queued_history_id} is no longer Queued)" if queued_history_id else "")
            )
        context.log.info(f"{control_key}: In Progress (history {history_id}, strategy {row.load_strategy})")

        try:
            if source is None:
                raise Failure(
                    f"ConfigurationError: {control_key}: db_config_key {row.db_config_key!r} not found"
                )
            before = _count_before(context, row, source, settings)
            load_request = build_load_request(
                row, source, lake_root=settings.lake_root, run_id=context.run.run_id, history_id=history_id
            )
            invocation = pipes_client.run(
                context=context,
                command=worker_command(),
                extras={"load_request": load_request},
                env=settings.worker_env(),
            )
            result = invocation.get_materialize_result()
        except BaseException as exc:
            message = (
                worker_error_message(context, exc) if not isinstance(exc, Failure) else str(exc.description)
            )
            queries.mark_failed(conn, control_key, message=message[:MAX_MESSAGE], history_id=history_id)
            context.log.error(f"{control_key}: Failed: {message}")
            raise

        metadata = _raw(result.metadata or {})
        table = open_table(settings.lake_root, row.destination_table)
        try:
            facts = from_worker_metadata(metadata)
            if facts is None and settings.orchestrator_source_counts:
                facts = count_source(row, source, secrets_dir=settings.resolved_secrets_dir(), before=before)
            if facts is None:
                facts = checks.SourceFacts(row_count=None, columns=None, origin="not reported by the worker")
        except Exception as exc:
            context.log.warning(f"{control_key}: source facts unavailable: {type(exc).__name__}: {exc}")
            facts = checks.SourceFacts(
                row_count=None, columns=None, origin=f"unavailable ({type(exc).__name__})"
            )
        check_results = []
        evaluations = {
            checks.ROW_COUNT: lambda: checks.check_row_count(
                row.load_strategy, facts, table, rolling_column=row.rolling_column
            ),
            checks.PK_UNIQUE: lambda: checks.check_primary_key(row.primary_keys or (), table),
            checks.FRESHNESS: lambda: checks.check_freshness(
                row.cron, row.cron_timezone, table, next_fire=next_fire
            ),
            checks.SCHEMA_DRIFT: lambda: checks.check_schema_drift(facts, table),
        }
        for name, evaluate in evaluations.items():
            try:
                check_results.append(evaluate())
            except Exception as exc:
                check_results.append(checks.failed_check(name, exc))
        failed = [c.check_name for c in check_results if not c.passed]

        succeeded = queries.mark_succeeded(
            conn,
            control_key,
            history_id=history_id,
            rows_processed=int(metadata.get("rows_processed") or 0),
            watermark_before=metadata.get("watermark_before"),
            watermark_after=metadata.get("watermark_after"),
            next_load_strategy=metadata.get("next_load_strategy"),
            clear_load_full=bool(metadata.get("load_full_done")),
            message=f"checks failed: {', '.join(failed)}" if failed else None,
        )
        if not succeeded:
            raise Failure(
                f"{control_key}: the load committed (Delta version {metadata.get('delta_version')}) but the row "
                "was no longer In Progress (a monitor failed it meanwhile); the next load resumes from Delta"
            )

    output_metadata: dict[str, Any] = {
        **metadata,
        "control_key": control_key,
        "history_id": history_id,
        "destination": MetadataValue.path(table_uri(settings.lake_root, row.destination_table)),
    }
    if table is not None:
        output_metadata["dagster/row_count"] = table.to_pyarrow_dataset().count_rows()
    return MaterializeResult(
        metadata=output_metadata, data_version=result.data_version, check_results=check_results
    )
