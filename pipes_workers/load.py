"""One load of one control row — the plain functions the Pipes worker and `dataloader load` call.

`run_load` reads top-down: read the Delta state, open the source (refusing an incompatible schema
change before reading, rows or not; the source row count taken in its own session), the strategy
writes and fills the LoadResult, the checks read the session's facts, the result is completed.
`attempt_load` does the same but returns a failed LoadResult instead of raising a LoadError, which
is what the orchestrator records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import LoadRequest, table_uri
from dataloader_contract.result import LoadFailure, LoadResult, SourceColumnFact, failed_result
from pipes_workers.checks import evaluate_checks
from pipes_workers.column_hashing import ColumnHasher, refuse_hashing_change
from pipes_workers.column_selection import left_out, selected_columns
from pipes_workers.deletes import reconcile_deletes
from pipes_workers.delta_settings import target_file_bytes
from pipes_workers.hash_key import hasher_for
from pipes_workers.lake.history import refuse_history_mismatch
from pipes_workers.lake.markers import DeltaState
from pipes_workers.lake.partitioning import Partitioning
from pipes_workers.lake.session import DeltaSession
from pipes_workers.schema_policy import REPLACES_SCHEMA, PolicyOutcome, apply_schema_policy
from pipes_workers.sources import open_reader
from pipes_workers.sources.base import SourceColumn, SourceReader, arrow_schema
from pipes_workers.sources.column_names import CASE_DUPLICATE_CODE, case_duplicate_problem
from pipes_workers.sources.failures import scrub
from pipes_workers.sources.query import qualified_name
from pipes_workers.storage import lake_storage_options
from pipes_workers.strategies import LoadContext, get_strategy
from pipes_workers.strategies.base import reads_whole_source
from pipes_workers.strategies.faults import crash_point

Log = Callable[[str], None]


def strategy_for(request: LoadRequest) -> str:
    """The strategy that runs: `full` when load_full forces a reload (a backfill restarts, cdc takes a
    new snapshot and a history table re-reads the source into new versions instead)."""
    if (
        request.load_full
        and request.load_strategy not in ("chunked_backfill", "cdc")
        and not request.keeps_history
    ):
        return "full"
    return request.load_strategy


def run_load(
    request: LoadRequest, *, log: Log | None = None, secrets_dir: str | Path | None = None
) -> LoadResult:
    """Load one table and report everything the worker measured.

    Read the Delta state, open the source, let the strategy write (and reconcile deletes), evaluate
    the checks from the session's facts, and complete the strategy's result with them.

    Args:
        request: the validated load request.
        log: progress sink (rows so far, chunk i of N); never receives secrets.
        secrets_dir: where `file`-scoped secrets live (default: DATALOADER_SECRETS_DIR).

    Returns:
        The LoadResult of a load that succeeded (possibly skipped or empty), with its checks.

    Raises:
        LoadError subclasses (kind transient / permanent / configuration) naming table and column.
    """
    emit = log or (lambda _message: None)
    started = time.monotonic()
    load_start = datetime.now(UTC)
    name = strategy_for(request)
    destination = DeltaSession(
        table_uri(request.lake_root, request.destination_table),
        storage_options=lake_storage_options(request.lake_root),
        target_file_size=target_file_bytes(request.load_strategy),
        soft_delete=request.delete_mode == "soft" and not request.keeps_history,
        partitioning=Partitioning.parse(request.partition_by, table=request.control_key),
        history=request.keeps_history,
    )
    state = destination.state(request.control_key)
    destination.check_partitioning(reload=name == "full" or request.load_full)
    emit(
        f"{request.control_key}: {name} load of {request.source_table} into {destination.uri} "
        f"(Delta version {state.version}, app transaction {state.txn_version})"
    )
    hasher = hasher_for(request, secrets_dir=secrets_dir)
    with open_reader(request.source, secrets_dir=secrets_dir) as reader:
        every_column = reader.columns(request.source_schema, request.source_table)
        columns = _source_columns(reader, request, destination, name, every_column, hasher, emit)
        ctx = LoadContext(
            request=request,
            reader=reader,
            destination=destination,
            state=state,
            columns=columns.columns,
            load_start=load_start,
            log=emit,
            strategy_name=name,
            discarded_columns=columns.discarded,
            hasher=hasher,
        )
        count = None
        if not reads_whole_source(request, name):
            count = reader.count_before_read(request.source_schema, request.source_table)
        result = reconcile_deletes(ctx, get_strategy(name).run(ctx))
        if count is not None:
            result = replace(
                result, source_row_count=count.result(), source_row_count_method="before the read"
            )
    if result.committed:
        crash_point("commit")
    checks, destination_rows = evaluate_checks(ctx, result)
    result = replace(
        result,
        seconds=round(time.monotonic() - started, 3),
        empty=not result.committed and not result.skipped,
        load_full_done=request.load_full,
        source_columns=tuple(
            SourceColumnFact(c.name, c.source_type, str(c.arrow_type)) for c in ctx.landed_columns
        ),
        hashed_columns=request.hash_columns,
        columns_left_out=left_out(every_column, ctx.columns),
        destination_uri=destination.uri,
        destination_row_count=destination_rows if name != "rolling" else destination.row_count(),
        committed_by_run=_previous_complete_load(state, request),
        checks=checks,
    )
    failed = f", checks failed: {', '.join(result.failed_checks)}" if result.failed_checks else ""
    emit(
        f"{request.control_key}: {result.rows_read:,} rows in {result.seconds:.1f} s, "
        f"watermark {result.watermark_after}, Delta version {result.delta_version}{failed}"
    )
    return result


def _source_columns(
    reader: SourceReader,
    request: LoadRequest,
    destination: DeltaSession,
    strategy: str,
    columns: list[SourceColumn],
    hasher: ColumnHasher | None,
    log: Log,
) -> PolicyOutcome:
    """The source columns the load reads: include_columns / exclude_columns, then the schema_policy
    (pipes_workers/schema_policy.py) over the columns as they land (hashed ones as strings). Refused
    when two differ only in case, when a hashed one cannot be hashed, or (for strategies that keep
    the table's schema) when a type, hashing or history change cannot be stored — on every load,
    rows or not."""
    table = qualified_name(reader.quote_identifier, request.source_schema, request.source_table)
    columns = selected_columns(request, columns, table)
    _refuse_case_duplicates(reader, request, columns)
    if hasher is not None:
        hasher.check_types(columns, table, request.control_key)
    as_landed = hasher.landed(columns) if hasher is not None else columns
    outcome = apply_schema_policy(request, as_landed, destination, strategy=strategy, log=log)
    kept = {c.name for c in outcome.columns}
    dropped = {c.name for c in outcome.discarded}
    read = [c for c in columns if c.name in kept]
    landed = hasher.landed(read) if hasher is not None else read
    # A cdc load_full takes a new snapshot: it replaces the table like full does.
    if strategy not in REPLACES_SCHEMA and not (strategy == "cdc" and request.load_full):
        destination.check_compatible(arrow_schema(landed))
        refuse_hashing_change(destination.stored_schema(), hasher, landed, destination.uri)
        refuse_history_mismatch(request, destination.stored_schema(), destination.uri)
    return PolicyOutcome(read, tuple(c for c in columns if c.name in dropped))


def _refuse_case_duplicates(reader: SourceReader, request: LoadRequest, columns: list[SourceColumn]) -> None:
    table = qualified_name(reader.quote_identifier, request.source_schema, request.source_table)
    problem = case_duplicate_problem(table, (c.name for c in columns))
    if problem is not None:
        raise ConfigurationError(problem, code=CASE_DUPLICATE_CODE)


def _previous_complete_load(state: DeltaState, request: LoadRequest) -> str | None:
    """The run id of the table's previous load commit when that commit finished a load (a backfill
    commit that was not its last chunk did not)."""
    if not state.last_run_id or state.last_run_id == request.run_id:
        return None
    chunk = state.last_chunk
    if (
        state.last_strategy == "chunked_backfill"
        and chunk
        and int(chunk.get("index", -1)) + 1 < int(chunk.get("total", 0))
    ):
        return None
    return state.last_run_id


def attempt_load(
    request: LoadRequest, *, log: Log | None = None, secrets_dir: str | Path | None = None
) -> LoadResult:
    """`run_load`, with a LoadError turned into a failed LoadResult (kind, code, message) instead."""
    started = time.monotonic()
    try:
        return run_load(request, log=log, secrets_dir=secrets_dir)
    except LoadError as exc:
        failure = LoadFailure.from_exception(exc)
        if log is not None:
            log(f"{request.control_key}: failed ({failure.kind}): {failure.message}")
        return failed_result(
            request.control_key, strategy_for(request), failure, seconds=time.monotonic() - started
        )


def unexpected_failure(control_key: str, exc: Exception) -> LoadFailure:
    """A bug (any exception that is no LoadError) as a permanent failure — a person must look — with
    its text scrubbed of URLs and passwords."""
    return LoadFailure(
        kind="permanent",
        code="worker_error",
        message=f"{control_key}: unexpected {type(exc).__name__} in the worker: {scrub(str(exc), ())}",
        error_type=type(exc).__name__,
    )
