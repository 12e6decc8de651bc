"""run_load: one load of one control row — the plain function the Pipes worker and `dataloader load` call."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipes_workers.deletes import reconcile_deletes
from pipes_workers.delta import DeltaDestination, table_uri
from pipes_workers.delta_settings import target_file_bytes
from pipes_workers.request import LoadRequest
from pipes_workers.result import LoadResult
from pipes_workers.sources import open_reader
from pipes_workers.storage import lake_storage_options
from pipes_workers.strategies import LoadContext, get_strategy
from pipes_workers.strategies.faults import crash_point


def strategy_for(request: LoadRequest) -> str:
    """The strategy that runs: `full` when load_full forces a reload (a backfill restarts instead)."""
    if request.load_full and request.load_strategy != "chunked_backfill":
        return "full"
    return request.load_strategy


def run_load(
    request: LoadRequest,
    *,
    log: Callable[[str], None] | None = None,
    secrets_dir: str | Path | None = None,
) -> LoadResult:
    """Load one table: read the Delta state, run the strategy, report what happened.

    Args:
        request: the validated load request.
        log: progress sink (rows so far, chunk i of N); never receives secrets.
        secrets_dir: where `file`-scoped secrets live (default: DATALOADER_SECRETS_DIR).

    Returns:
        LoadResult whose `to_metadata()` is the materialisation metadata.

    Raises:
        LoadError subclasses (TransientLoadError / PermanentLoadError) naming table and column.
    """
    emit = log or (lambda _message: None)
    started = time.monotonic()
    load_start = datetime.now(UTC)
    name = strategy_for(request)
    destination = DeltaDestination(
        table_uri(request.lake_root, request.destination_table),
        storage_options=lake_storage_options(request.lake_root),
        target_file_size=target_file_bytes(request.load_strategy),
        soft_delete=request.delete_mode == "soft",
    )
    state = destination.state(request.control_key)
    emit(
        f"{request.control_key}: {name} load of {request.source_table} into {destination.uri} "
        f"(Delta version {state.version}, app transaction {state.txn_version})"
    )
    strategy = get_strategy(name)
    with open_reader(request.source, secrets_dir=secrets_dir) as reader:
        columns = reader.columns(request.source_schema, request.source_table)
        ctx = LoadContext(
            request=request,
            reader=reader,
            destination=destination,
            state=state,
            columns=columns,
            load_start=load_start,
            log=emit,
            strategy_name=name,
        )
        outcome = reconcile_deletes(ctx, strategy.run(ctx))
    if outcome.committed:
        crash_point("commit")
    seconds = time.monotonic() - started
    result = LoadResult(
        strategy=request.load_strategy,
        rows_processed=outcome.rows_processed,
        bytes_written=outcome.bytes_written,
        seconds=round(seconds, 3),
        rows_per_second=round(outcome.rows_processed / seconds, 1) if seconds > 0 else 0.0,
        watermark_before=outcome.watermark_before,
        watermark_after=outcome.watermark_after,
        delta_version=outcome.delta_version,
        skipped=outcome.skipped,
        next_load_strategy=outcome.next_load_strategy,
        load_full_done=request.load_full,
        null_incremental_rows=outcome.null_incremental_rows,
        chunks_done=outcome.chunks_done,
        chunks_total=outcome.chunks_total,
        rows_deleted=outcome.rows_deleted,
        deletes_note=outcome.deletes_note,
    )
    emit(
        f"{request.control_key}: {result.rows_processed:,} rows in {result.seconds:.1f} s, "
        f"watermark {result.watermark_after}, Delta version {result.delta_version}"
    )
    return result
