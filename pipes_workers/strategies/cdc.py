"""cdc: the table's changes read from the source database's log (pipes_workers/cdc), exactly once.

- The first load, and every `load_full`, takes a snapshot: the capture creates (recreates) the
  slot and reads the whole table consistent with it; the rows overwrite the table in one commit
  whose watermark is the slot's position.
- Later loads read the changes after the committed position — the control row's `incremental_value`
  or, when the Delta table is ahead (a commit the orchestrator never recorded), its last commit's
  watermark — up to DATALOADER_CDC_MAX_CHANGES (default 100,000) changes within DATALOADER_CDC_MAX_SECONDS
  (default 300 s) of decoding, collapse them per key and MERGE them in one commit carrying the end
  position (cdc/apply.py). The position is acknowledged to the source only after that commit; a
  crash before it makes the next load read the same changes again and skip those at or below the
  committed position.
- With history_mode scd2 the snapshot writes current versions and each batch becomes versions in
  the same single commit carrying the position (cdc/versions.py), so exactly-once holds for history.
- A missing slot (dropped, or never created for this position) is a configuration error asking for
  `load_full`. The slot's lag (bytes of WAL it retains) goes into the result, its metadata and the
  `cdc_slot_lag` check.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.result import LoadResult
from pipes_workers.cdc import capture_for
from pipes_workers.cdc.apply import apply_changes, collapse
from pipes_workers.cdc.capture import ChangeCapture
from pipes_workers.cdc.versions import apply_versions
from pipes_workers.env_settings import positive_number
from pipes_workers.lake.history import CloseMissing, apply_history, has_history
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.writes import WriteOutcome
from pipes_workers.sources.base import arrow_schema
from pipes_workers.strategies.base import VERSION_COUNTS, LoadContext, LoadStrategy, register
from pipes_workers.strategies.faults import crash_point
from pipes_workers.strategies.stream import TrackedStream

MAX_CHANGES_ENV = "DATALOADER_CDC_MAX_CHANGES"
DEFAULT_MAX_CHANGES = 100_000
MAX_SECONDS_ENV = "DATALOADER_CDC_MAX_SECONDS"
DEFAULT_MAX_SECONDS = 300.0


@register
class CdcStrategy(LoadStrategy):
    """Snapshot once, then MERGE the log's changes past the committed position."""

    name = "cdc"

    def run(self, ctx: LoadContext) -> LoadResult:
        request = ctx.request
        if not request.primary_keys:
            raise ConfigurationError(f"{request.control_key}: load_strategy cdc needs primary_keys")
        capture = capture_for(request, ctx.reader.params)  # type: ignore[attr-defined]
        try:
            capture.table_schema = arrow_schema(ctx.columns)
            committed = committed_position(ctx, capture)
            if request.load_full or committed is None:
                return _snapshot(ctx, capture)
            if not capture.has_position(committed):
                raise ConfigurationError(
                    f"{request.control_key}: the change log no longer holds the changes after position "
                    f"{committed} (replication slot missing or moved past it); set load_full on the row "
                    "to take a new snapshot",
                    code="cdc_position_lost",
                )
            return _apply(ctx, capture, committed)
        finally:
            capture.close()


def committed_position(ctx: LoadContext, capture: ChangeCapture) -> str | None:
    """The newest committed position: the control row's, unless the Delta table's is ahead."""
    found = []
    for where, position in (
        ("control row", ctx.request.incremental_value),
        ("Delta", ctx.state.last_watermark),
    ):
        if position is None or not ctx.state.exists:
            continue
        try:
            found.append((capture.position_key(position), position, where))
        except (ValueError, IndexError):
            ctx.log(f"ignoring the {where}'s watermark {position!r}: not a change log position")
    if not found:
        return None
    _key, position, where = max(found)
    if where == "Delta" and position != ctx.request.incremental_value:
        ctx.log(f"Delta table is ahead of the control row: position {position} from the last commit wins")
    return position


def _snapshot(ctx: LoadContext, capture: ChangeCapture) -> LoadResult:
    ctx.log(
        f"cdc snapshot of {ctx.table_label}: creating the replication slot and reading the table in its snapshot"
    )
    snapshot = capture.start_snapshot()
    crash_point("snapshot")
    reader = pa.RecordBatchReader.from_batches(capture.table_schema, snapshot.batches)
    stream = TrackedStream(reader, track=None, log=ctx.log, keys=tuple(ctx.request.primary_keys))
    marker = ctx.marker(watermark=snapshot.position)
    if ctx.request.keeps_history:
        written = _snapshot_versions(ctx, stream, marker)
    else:
        written = ctx.destination.overwrite(stream.reader(), marker)
    crash_point("acknowledge")
    capture.acknowledge(snapshot.position)
    ctx.log(f"snapshot of {stream.rows:,} rows committed at position {snapshot.position}")
    return ctx.written(
        stream,
        written,
        before=ctx.request.incremental_value,
        after=snapshot.position,
        source_row_count=stream.rows,
        source_row_count_method="read snapshot",
        cdc_lag_bytes=capture.lag_bytes(),
    )


def _snapshot_versions(ctx: LoadContext, stream: TrackedStream, marker: CommitMarker) -> WriteOutcome:
    """A history table's snapshot: the first one writes every row as its current version; a later
    one (load_full) adds a version for each changed row and closes those the source no longer has.
    Versions start at the load's start (the snapshot's rows carry no commit time)."""
    destination = ctx.destination
    return apply_history(
        destination,
        stream.reader(),
        ctx.request.primary_keys,
        marker,
        changed_at=ctx.load_start,
        close_missing=CloseMissing(),
        replace=not has_history(destination.stored_schema()),
    )


def _apply(ctx: LoadContext, capture: ChangeCapture, committed: str) -> LoadResult:
    request = ctx.request
    max_changes = int(positive_number(MAX_CHANGES_ENV, DEFAULT_MAX_CHANGES))
    batch = capture.read_changes(
        committed, max_changes, positive_number(MAX_SECONDS_ENV, DEFAULT_MAX_SECONDS)
    )
    crash_point("read")
    fresh = [c for c in batch.changes if capture.position_key(c.position) > capture.position_key(committed)]
    ctx.log(f"read {len(fresh):,} changes after position {committed} up to {batch.end_position}")
    collapsed = collapse(fresh, request.primary_keys, request.delete_mode, ctx.log)
    if not collapsed.changes and not collapsed.truncated:
        # Nothing to write, yet the log may have moved: the end position goes to the control row
        # only (no empty commit), and the next load acknowledges it when it starts from it. Not
        # now: a crash before the control row is updated would leave the slot ahead of every
        # recorded position, which reads as a lost slot.
        return ctx.result(
            rows_read=len(fresh),
            watermark_before=committed,
            watermark_after=batch.end_position,
            delta_version=ctx.state.version,
            cdc_lag_bytes=_lag(capture, batch.lag_bytes),
        )
    marker = ctx.marker(watermark=batch.end_position)
    keys = request.primary_keys
    if request.keeps_history:
        written = apply_versions(
            ctx.destination, capture, collapsed, keys, marker, changed_at=datetime.now(UTC), log=ctx.log
        )
    else:
        written = apply_changes(ctx.destination, capture, collapsed, keys, marker, request.delete_mode)
    crash_point("acknowledge")
    capture.acknowledge(batch.end_position)
    ctx.log(
        f"{collapsed.upserts:,} upserts and {collapsed.deletes:,} deletes in one commit "
        f"(Delta version {written.delta_version}), position {batch.end_position} acknowledged"
    )
    return ctx.result(
        rows_read=len(fresh),
        rows_written=collapsed.upserts,
        rows_deleted=_deleted(request.delete_mode, collapsed.deletes, written.metrics, request.keeps_history),
        bytes_written=written.bytes_written,
        watermark_before=committed,
        watermark_after=batch.end_position,
        delta_version=written.delta_version,
        committed=True,
        cdc_lag_bytes=_lag(capture, batch.lag_bytes),
        **{name: written.metrics[name] for name in VERSION_COUNTS if name in written.metrics},
    )


def _lag(capture: ChangeCapture, at_read: int | None) -> int | None:
    """The log the source retains for this table now (after the acknowledgement), else at the read."""
    now = capture.lag_bytes()
    return now if now is not None else at_read


def _deleted(delete_mode: str, deletes: int, metrics: dict, history: bool) -> int | None:
    """Rows the commit removed (hard: the MERGE's count, which leaves out keys inserted and deleted
    within the batch) or stamped deleted (soft: the delete changes) or whose version it closed
    (history: the delete changes); None when deletes are ignored."""
    if delete_mode == "hard" and not history:
        return int(metrics.get("num_target_rows_deleted", deletes))
    return deletes if delete_mode == "soft" or (history and delete_mode != "none") else None
