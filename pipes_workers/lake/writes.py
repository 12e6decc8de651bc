"""The write modes — overwrite, append, merge, delete rows — each one commit on the session's open
table, guarded by the load's app transaction (a re-run never re-applies a commit).

Columns are written nullable and conformed to the table (schema_conform.py); new source columns are
added (schema evolution). A failed write removes the files it left behind before it raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError, SchemaMismatchError
from deltalake.table import TableMerger

from dataloader_contract.errors import PermanentLoadError, SchemaConflictError, TransientLoadError
from pipes_workers.delta_settings import writer_properties
from pipes_workers.lake.key_claims import claim_after_merge
from pipes_workers.lake.known_panics import known_panics_hidden
from pipes_workers.lake.leftovers import remove_leftovers
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.partition_moves import merge_pruning_term
from pipes_workers.lake.schema_conform import DELETED_AT, DELETED_AT_TYPE, Rows, conform, quote_column
from pipes_workers.lake.spool import spool_max_bytes, spooled
from pipes_workers.lake.table_facts import added_bytes, arrow_schema, file_paths
from pipes_workers.lake.unique_claim import proven_unique_version
from pipes_workers.lake.write_failures import WatchedRows, log_failure, write_failure

if TYPE_CHECKING:
    from pipes_workers.lake.session import DeltaSession


@dataclass(frozen=True)
class WriteOutcome:
    """A committed write: the new table version and the bytes of the data files it added."""

    delta_version: int
    bytes_written: int
    metrics: dict[str, Any] = field(default_factory=dict)


def overwrite(session: DeltaSession, data: Rows, marker: CommitMarker) -> WriteOutcome:
    """Replace the table's rows and schema in one commit (creates the table when missing)."""
    return _write(session, data, marker, mode="overwrite")


def append(session: DeltaSession, data: pa.RecordBatchReader, marker: CommitMarker) -> WriteOutcome:
    """Append rows in one commit; new columns are added to the table."""
    return _write(session, data, marker, mode="append")


def _write(session: DeltaSession, data: Rows, marker: CommitMarker, *, mode: str) -> WriteOutcome:
    table = session.table()
    _guard(session, table, marker)
    before = file_paths(table)
    replacing = mode == "overwrite"
    schema = None if replacing or table is None else arrow_schema(table)
    data = session.partitioning.with_columns(data, uri=session.uri)
    watched = WatchedRows(conform(data, schema, uri=session.uri, soft_delete=session.soft_delete))
    creates = {"delta.targetFileSize": str(session.target_file_size)}
    # A new or replaced table takes the control row's partitioning; an append keeps the table's.
    partition_by = (session.partitioning.names or None) if replacing or table is None else None
    try:
        with known_panics_hidden():
            write_deltalake(
                table if table is not None else session.uri,
                watched.rows,
                mode=mode,  # type: ignore[arg-type]
                schema_mode="overwrite" if replacing else "merge",
                partition_by=partition_by,
                target_file_size=session.target_file_size,
                writer_properties=writer_properties(),
                commit_properties=marker.commit_properties(),
                configuration=creates if replacing or table is None else None,
                storage_options=session.storage_options,
            )
    except Exception as exc:
        raise _write_failure(session, exc, watched) from None
    return _outcome(session, before)


def merge(
    session: DeltaSession,
    data: Rows,
    primary_keys: Sequence[str],
    marker: CommitMarker,
    *,
    delete_not_in_source: bool = False,
) -> WriteOutcome:
    """Upsert on `primary_keys` in one commit (creates the table, plain write, when missing).

    `data`: a stream (consumed once, merged streaming) or a table held in memory, which lets
    delta-rs skip every target file outside the source's key range and, on a partitioned table,
    every partition neither its rows nor the stored rows of its keys are in (partition_moves.py); a
    stream into a partitioned table is spooled to local disk first for the same pruning (spool.py).
    `delete_not_in_source`: also delete every destination row the source does not have (rolling:
    the source holds the whole window, so this removes rows deleted inside the window and rows
    that fell out of it).
    """
    if not primary_keys:
        raise PermanentLoadError(f"{session.uri}: a merge needs primary_keys")
    table = session.table()
    if table is None:
        return overwrite(session, data, marker)
    refuse_backticks(session.uri, data.schema)
    _guard(session, table, marker)
    before = file_paths(table)
    in_memory = isinstance(data, pa.Table)
    data = conform(
        session.partitioning.with_columns(data, uri=session.uri),
        arrow_schema(table),
        uri=session.uri,
        soft_delete=session.soft_delete,
    )
    pruning = None
    if in_memory:
        # Rolling deletes every target row the source lacks, so every partition is touched anyway.
        if not delete_not_in_source:
            # Also the partitions the keys are stored in now: a row whose partition value changed
            # is matched there and moved, never inserted again.
            pruning = merge_pruning_term(table, data, primary_keys, session.partitioning)
        marker = claim_after_merge(table, data, primary_keys, marker)
    watched = WatchedRows(data)
    prunable_stream = not in_memory and session.partitioning.names and not delete_not_in_source
    try:
        with ExitStack() as stack:
            rows = watched.rows
            if prunable_stream and (spool_bytes := spool_max_bytes()):
                # A large read on a partitioned table: spooled to local disk first, its partitions
                # and keys are known and the merge is pruned like a small one (lake/spool.py).
                spool = stack.enter_context(spooled(watched.rows, spool_bytes))
                rows = spool.rows
                if spool.table is not None:
                    pruning = merge_pruning_term(table, spool.table, primary_keys, session.partitioning)
            merger = (
                start_merge(
                    table, rows, merge_predicate(primary_keys, pruning), marker, streamed=not in_memory
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
            )
            if delete_not_in_source:
                merger = merger.when_not_matched_by_source_delete()
            with known_panics_hidden():
                metrics = merger.execute()
    except Exception as exc:
        raise _write_failure(session, exc, watched) from None
    return _outcome(session, before, metrics)


def refuse_backticks(uri: str, schema: pa.Schema) -> None:
    """SchemaConflictError naming the first column whose name holds a backtick (MERGE cannot address it)."""
    for name in schema.names:
        if "`" in name:
            raise SchemaConflictError(
                f"{uri}: column {name!r} contains a backtick, which Delta MERGE cannot address"
            )


def start_merge(
    table: DeltaTable, rows: Rows, predicate: str, marker: CommitMarker, *, streamed: bool
) -> TableMerger:
    """A load's MERGE of `rows` (alias `source`) into `table` (alias `target`) on `predicate`, new
    columns added, committed with `marker`; the caller adds the clauses and executes it."""
    return table.merge(
        rows,
        predicate=predicate,
        source_alias="source",
        target_alias="target",
        merge_schema=True,
        writer_properties=writer_properties(),
        streamed_exec=streamed,
        commit_properties=marker.commit_properties(),
    )


def delete_rows(
    session: DeltaSession,
    keys: pa.Table,
    primary_keys: Sequence[str],
    marker: CommitMarker,
    *,
    soft_deleted_at: datetime | None = None,
) -> tuple[WriteOutcome, int]:
    """In one commit, remove the rows whose keys are in `keys` (typed as the table's, from
    `live_keys`) — or, with `soft_deleted_at`, set their `_dataloader_deleted_at` (adding the column
    when the table lacks it). Returns the commit's WriteOutcome and the rows removed or stamped."""
    table = session.table()
    if table is None:
        raise PermanentLoadError(f"{session.uri}: no Delta table to delete rows from")
    _guard(session, table, marker)
    if proven_unique_version(table, tuple(primary_keys)) is not None:
        # Removing rows or stamping their deletion time cannot repeat a key.
        marker = replace(marker, unique_keys=tuple(primary_keys), unique_keys_base=table.version())
    before = file_paths(table)
    # `keys` (from live_keys) carry the rows' partition values: the delete touches only their partitions.
    partitions = [name for name in session.partitioning.names if name in keys.column_names]
    source = keys.select([*primary_keys, *partitions])
    predicate = merge_predicate(primary_keys, session.partitioning.pruning_term(source))
    if soft_deleted_at is not None:
        stamps = pa.array([soft_deleted_at] * source.num_rows, DELETED_AT_TYPE)
        source = source.append_column(pa.field(DELETED_AT, DELETED_AT_TYPE), stamps)
    try:
        merger = table.merge(
            source,
            predicate=predicate,
            source_alias="source",
            target_alias="target",
            merge_schema=soft_deleted_at is not None,
            writer_properties=writer_properties(),
            commit_properties=marker.commit_properties(),
        )
        if soft_deleted_at is None:
            merger = merger.when_matched_delete()
        else:
            column = quote_column(DELETED_AT)
            live = f"target.{column} IS NULL" if DELETED_AT in arrow_schema(table).names else None
            merger = merger.when_matched_update({column: f"source.{column}"}, predicate=live)
        with known_panics_hidden():
            metrics = merger.execute()
    except (DeltaError, SchemaMismatchError, OSError) as exc:
        raise session.failure(exc) from exc
    changed = metrics.get("num_target_rows_updated" if soft_deleted_at else "num_target_rows_deleted", 0)
    return _outcome(session, before, metrics), int(changed)


def merge_predicate(primary_keys: Sequence[str], *terms: str | None) -> str:
    """The MERGE condition `target.k = source.k AND ...` over `primary_keys`, with the extra `terms`
    (partition pruning, ...) that are not None."""
    keys = [f"target.{quote_column(k)} = source.{quote_column(k)}" for k in primary_keys]
    return " AND ".join([*keys, *(term for term in terms if term)])


def _guard(session: DeltaSession, table: DeltaTable | None, marker: CommitMarker) -> None:
    """Refuse a commit whose txn version is already in the table (a re-run must never re-apply).
    The one refresh of a load's open table before it commits: another writer's commits count."""
    if table is None:
        return
    table.update_incremental()
    current = table.transaction_version(marker.control_key)
    if current is not None and current >= marker.txn_version:
        raise TransientLoadError(
            f"{session.uri}: app transaction {marker.control_key!r} version {marker.txn_version} is already "
            f"committed (table has {current}); another load of this table ran concurrently"
        )


def _write_failure(session: DeltaSession, exc: Exception, watched: WatchedRows) -> BaseException:
    """What a failed write raises (the stream's own error first), after removing the files it
    left behind; the original error, with its traceback, is logged at debug level."""
    remove_leftovers(session.uri, watched.started, storage_options=session.storage_options)
    failure = write_failure(exc, watched, session.uri, session.storage_options)
    log_failure(failure, exc)
    return failure


def _outcome(session: DeltaSession, before: set[str], metrics: dict[str, Any] | None = None) -> WriteOutcome:
    """The committed write, read from the session's table (which the commit brought up to date;
    a table this write created is opened now, once)."""
    table = session.after_commit()
    return WriteOutcome(
        delta_version=table.version(), bytes_written=added_bytes(table, before), metrics=metrics or {}
    )
