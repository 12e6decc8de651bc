"""Delete reconciliation: rows the source no longer has leave Delta (`hard`) or get `_dataloader_deleted_at` (`soft`).

After a load's own commit, `reconcile_deletes` reads only the primary-key columns of the source,
anti-joins the Delta table's live keys with them, and removes or stamps the vanished rows in ONE
Delta commit that carries the next app
transaction and repeats the load's watermark/strategy/chunk metadata, so exactly-once bookkeeping
reads the same state after it. A kill before that commit leaves the table as the load left it; the
next load reconciles again.

Memory: the Delta table's live key columns are held once. With a single integer, decimal, date or
timestamp key and more than DATALOADER_DELETE_SLICE_ROWS (default 1,000,000) live rows, the source is
read in key ranges of that many Delta keys (`key >= lo AND key <= hi`, an index range scan each), so
at most one range of source keys is held; other keys (text, composite) are read whole. Text keys are
never cut into ranges: the source's collation may order them differently from Arrow.

Safety: a source that returns no keys deletes nothing (an empty read says nothing about deletes),
and a pass that would delete more than DATALOADER_DELETE_MAX_SHARE (default 0.5) of the live rows
is refused unless the row has `load_full`. Both cases leave the load Succeeded and say why in
`deletes_note`. `full`, `rolling` and `cdc` see deletes by themselves and are not reconciled. On a
table with history (history_mode scd2) either mode closes the deleted key's current version instead.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
from croniter import croniter

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import LoadResult
from pipes_workers.env_settings import whole_number
from pipes_workers.lake.history import close_versions
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.sources.base import Condition, RowFilter
from pipes_workers.strategies.base import LoadContext
from pipes_workers.strategies.faults import crash_point

MAX_SHARE_ENV = "DATALOADER_DELETE_MAX_SHARE"
DEFAULT_MAX_SHARE = 0.5
SLICE_ROWS_ENV = "DATALOADER_DELETE_SLICE_ROWS"
DEFAULT_SLICE_ROWS = 1_000_000
# These strategies' own commits already drop rows the source no longer has (cdc: from the log).
SEES_DELETES = frozenset({"full", "rolling", "cdc"})


def delete_max_share() -> float:
    """DATALOADER_DELETE_MAX_SHARE: the largest share of live rows one pass may delete (0 < share <= 1)."""
    raw = os.environ.get(MAX_SHARE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_SHARE
    try:
        share = float(raw)
    except ValueError:
        raise ConfigurationError(f"{MAX_SHARE_ENV}={raw!r} is not a number between 0 and 1") from None
    if not 0 < share <= 1:
        raise ConfigurationError(f"{MAX_SHARE_ENV}={raw!r} must be > 0 and <= 1")
    return share


def delete_slice_rows() -> int:
    """DATALOADER_DELETE_SLICE_ROWS: Delta keys per source key range (a positive integer)."""
    return whole_number(SLICE_ROWS_ENV, DEFAULT_SLICE_ROWS, unit="keys", minimum=1)


def deletes_due(request: LoadRequest, now: datetime) -> bool:
    """Whether this load reconciles deletes: always without `delete_check_cron`, else when the cron
    (read in the row's `cron_timezone`) fired since `last_delete_check_at`."""
    if request.delete_check_cron is None or request.last_delete_check_at is None:
        return True
    last = datetime.fromisoformat(request.last_delete_check_at)
    zone = ZoneInfo(request.cron_timezone or "UTC")
    fire: datetime = croniter(request.delete_check_cron, last.astimezone(zone)).get_next(datetime)
    return fire <= now


def reconcile_deletes(ctx: LoadContext, outcome: LoadResult) -> LoadResult:
    """Reconcile source deletes into the Delta table after the strategy ran; `outcome` plus what it did.

    Args:
        ctx: the load's session (its reader is still open).
        outcome: the strategy's result.

    Returns:
        `outcome` with `rows_deleted` (None when no reconciliation ran or it was refused),
        `deletes_note` (why nothing was deleted, when refused) and, after a commit, its Delta version.
    """
    request = ctx.request
    if request.delete_mode == "none" or ctx.strategy_name in SEES_DELETES:
        return outcome
    if not deletes_due(request, datetime.now(UTC)):
        ctx.log(f"delete check not due (delete_check_cron {request.delete_check_cron!r})")
        return outcome
    limit = delete_max_share()
    destination = ctx.destination
    state = destination.state(request.control_key)
    delta_keys = destination.live_keys(request.primary_keys) if state.exists else None
    if delta_keys is None:
        return outcome
    vanished, source_rows = _vanished_keys(ctx, delta_keys)
    label = ctx.table_label
    if source_rows == 0 and delta_keys.num_rows > 0:
        note = (
            f"{label}: the source returned no keys, so no rows were deleted (an empty read says nothing "
            "about deletes; if the table really was emptied, reload it with load_full)"
        )
        ctx.log(note)
        return dataclasses.replace(outcome, deletes_note=note)
    ctx.log(f"delete check: {vanished.num_rows:,} of {delta_keys.num_rows:,} live rows are gone from {label}")
    if vanished.num_rows == 0:
        return dataclasses.replace(outcome, rows_deleted=0)
    share = vanished.num_rows / delta_keys.num_rows
    if share > limit and not request.load_full:
        note = (
            f"{label}: refusing to delete {vanished.num_rows:,} of {delta_keys.num_rows:,} rows ({share:.0%}) "
            f"in one pass: more than {MAX_SHARE_ENV}={limit:g}; set load_full on the row to reload, or raise "
            f"{MAX_SHARE_ENV} if the deletes are real"
        )
        ctx.log(note)
        return dataclasses.replace(outcome, deletes_note=note)
    crash_point("reconcile")
    marker = CommitMarker(
        control_key=request.control_key,
        txn_version=state.next_txn_version,
        strategy=state.last_strategy or ctx.strategy_name,
        run_id=request.run_id,
        watermark=state.last_watermark,
        chunk=state.last_chunk,
        operation=f"{request.delete_mode}_delete",
    )
    soft_at = datetime.now(UTC) if request.delete_mode == "soft" else None
    if request.keeps_history:  # the current version is closed, never removed
        written, changed = close_versions(destination, vanished, request.primary_keys, marker)
        verb = "closed (deleted at the source; history kept)"
    else:
        written, changed = destination.delete_rows(
            vanished, request.primary_keys, marker, soft_deleted_at=soft_at
        )
        verb = "marked deleted" if soft_at else "deleted"
    ctx.log(f"{changed:,} rows {verb} in one commit (Delta version {written.delta_version})")
    closed = (outcome.versions_closed or 0) + changed if request.keeps_history else None
    return dataclasses.replace(
        outcome,
        rows_deleted=changed,
        delta_version=written.delta_version,
        committed=True,
        versions_closed=closed,
    )


def _vanished_keys(ctx: LoadContext, delta_keys: pa.Table) -> tuple[pa.Table, int]:
    """(Delta keys the source no longer has, source keys read), in key ranges when the key allows."""
    keys = list(ctx.request.primary_keys)
    slice_rows = delete_slice_rows()
    if len(keys) > 1 or delta_keys.num_rows <= slice_rows or not _rangeable(delta_keys.schema.field(0).type):
        source = _source_keys(ctx, delta_keys.schema, None)
        return delta_keys.join(source, keys=keys, join_type="left anti"), source.num_rows
    ordered = delta_keys.sort_by(keys[0])
    parts, seen = [], 0
    for start in range(0, ordered.num_rows, slice_rows):
        part = ordered.slice(start, slice_rows)
        low, high = part.column(0)[0].as_py(), part.column(0)[-1].as_py()
        in_range = RowFilter((Condition(keys[0], ">=", low), Condition(keys[0], "<=", high)))
        source = _source_keys(ctx, ordered.schema, in_range)
        seen += source.num_rows
        parts.append(part.join(source, keys=keys, join_type="left anti"))
    ctx.log(f"delete check read the source keys in {len(parts)} ranges of {slice_rows:,} Delta keys")
    return pa.concat_tables(parts), seen


def _rangeable(dtype: pa.DataType) -> bool:
    return pa.types.is_integer(dtype) or pa.types.is_decimal(dtype) or pa.types.is_temporal(dtype)


def _source_keys(ctx: LoadContext, key_schema: pa.Schema, row_filter: RowFilter | None) -> pa.Table:
    """The source's primary keys (matching `row_filter`), streamed and kept as key columns typed like Delta's."""
    request = ctx.request
    columns = [ctx.column(key, "primary_keys") for key in request.primary_keys]
    stream = ctx.source_batches(columns, row_filter)
    wanted = ctx.destination.comparable_schema(stream.schema, key_schema)
    batches = [batch.cast(wanted) for batch in stream if batch.num_rows]
    return pa.Table.from_batches(batches, schema=wanted)
