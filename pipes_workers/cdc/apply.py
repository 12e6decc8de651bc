"""Apply one batch of captured changes to the Delta table as ONE commit.

Each key is collapsed to its last change in log order (an update that did not carry an unchanged
TOAST column takes it from an earlier change of the same batch when there is one; otherwise the
column keeps the value in Delta: the MERGE does not touch it). The batch becomes one MERGE:
upserts update every carried column or insert the row; deletes remove the row (`hard`), stamp
`_dataloader_deleted_at` on a live row (`soft`, as delete reconciliation does) or are ignored
(`none`). A TRUNCATE in the batch drops every change before it and, unless delete_mode is none,
also removes (hard) or stamps (soft) every row the rest of the batch does not write.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa
from deltalake.schema import Field

from pipes_workers.cdc.arrays import string_array, timestamps
from pipes_workers.cdc.capture import Change, ChangeCapture
from pipes_workers.delta_settings import writer_properties
from pipes_workers.lake import writes
from pipes_workers.lake.key_claims import claim_after_merge
from pipes_workers.lake.known_panics import known_panics_hidden
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.schema_conform import (
    DELETED_AT,
    DELETED_AT_TYPE,
    conform,
    quote_column,
    storable_schema,
)
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.table_facts import added_bytes, arrow_schema, file_paths
from pipes_workers.lake.writes import WriteOutcome

OP, KEEP = "_dataloader_cdc_op", "_dataloader_cdc_keep"  # helper columns of the MERGE source only


@dataclass(frozen=True)
class Collapsed:
    """A batch reduced to one change per key, in log order of each key's last change."""

    changes: list[Change]
    truncated: bool  # a TRUNCATE applies: rows the batch does not write are removed/stamped

    @property
    def upserts(self) -> int:
        return sum(1 for c in self.changes if c.op != "delete")

    @property
    def deletes(self) -> int:
        return sum(1 for c in self.changes if c.op == "delete")


def collapse(
    changes: Sequence[Change], keys: Sequence[str], delete_mode: str, log: Callable[[str], None]
) -> Collapsed:
    """Each key's last change; deletes and truncates dropped when delete_mode is none."""
    last: dict[tuple[object, ...], Change] = {}
    truncated = False
    for change in changes:
        if change.op == "truncate":
            if delete_mode == "none":
                log(f"TRUNCATE at {change.position} ignored: delete_mode is none")
                continue
            log(f"TRUNCATE at {change.position}: the rows written before it are replaced")
            last.clear()
            truncated = True
            continue
        if change.op == "delete" and delete_mode == "none":
            continue
        key = tuple(change.values.get(k) for k in keys)
        previous = last.pop(key, None)  # popped: the key moves to its new place in log order
        if change.unchanged and previous is not None and previous.op != "delete":
            carried = {c: previous.values[c] for c in change.unchanged if c in previous.values}
            change = dataclasses.replace(
                change,
                values={**change.values, **carried},
                unchanged=frozenset(change.unchanged - carried.keys()),
            )
        last[key] = change
    return Collapsed(list(last.values()), truncated)


def apply_changes(
    session: DeltaSession,
    capture: ChangeCapture,
    batch: Collapsed,
    keys: Sequence[str],
    marker: CommitMarker,
    delete_mode: str,
) -> WriteOutcome:
    """MERGE `batch` into the session's table in one commit carrying `marker`."""
    table = session.require()
    rows = capture.to_arrow([c.values for c in batch.changes], capture.table_schema)
    keep_sets = sorted({c.unchanged for c in batch.changes if c.op != "delete" and c.unchanged}, key=sorted)
    keep_ids = {s: str(i + 1) for i, s in enumerate(keep_sets)}
    ops = ["delete" if c.op == "delete" else "upsert" for c in batch.changes]
    keep = ["" if c.op == "delete" or not c.unchanged else keep_ids[c.unchanged] for c in batch.changes]
    rows = rows.append_column(OP, string_array(ops)).append_column(KEEP, string_array(keep))
    soft = delete_mode == "soft"
    now = datetime.now(UTC)
    if soft:
        stamps = [now if op == "delete" else None for op in ops]
        rows = rows.append_column(pa.field(DELETED_AT, DELETED_AT_TYPE), timestamps(stamps, DELETED_AT_TYPE))
    _add_new_columns(session, rows.schema)
    rows = session.partitioning.with_columns(rows, uri=session.uri)  # month(col) …: as every write
    source = conform(rows, arrow_schema(table), uri=session.uri, soft_delete=False)
    writes._guard(session, table, marker)
    before = file_paths(table)
    # One change per key: the table's keys stay unique (lake/unique_claim.py), so the key check
    # after the load needs no scan.
    marker = claim_after_merge(table, source, keys, marker)
    derived = {c.name: c.source for c in session.partitioning.columns if c.unit is not None}
    data = list(capture.table_schema.names) + list(derived) + ([DELETED_AT] if soft else [])
    q = quote_column
    predicate = " AND ".join(f"target.{q(k)} = source.{q(k)}" for k in keys)
    merger = table.merge(
        source,
        predicate=predicate,
        source_alias="source",
        target_alias="target",
        merge_schema=False,
        streamed_exec=False,  # held in memory: delta-rs skips target files outside its key range
        writer_properties=writer_properties(),
        commit_properties=marker.commit_properties(),
    )
    upsert = f"source.{q(OP)} = 'upsert'"
    for kept in keep_sets:
        columns = {q(n): f"source.{q(n)}" for n in data if n not in kept and derived.get(n) not in kept}
        merger = merger.when_matched_update(
            columns, predicate=f"{upsert} AND source.{q(KEEP)} = '{keep_ids[kept]}'"
        )
    everything = {q(n): f"source.{q(n)}" for n in data}
    merger = merger.when_matched_update(everything, predicate=upsert)
    live = f"target.{q(DELETED_AT)} IS NULL"
    if soft:
        stamp = {q(DELETED_AT): f"source.{q(DELETED_AT)}"}
        merger = merger.when_matched_update(stamp, predicate=f"source.{q(OP)} = 'delete' AND {live}")
    elif delete_mode == "hard":
        merger = merger.when_matched_delete(predicate=f"source.{q(OP)} = 'delete'")
    merger = merger.when_not_matched_insert(everything, predicate=upsert)
    if batch.truncated and soft:
        merger = merger.when_not_matched_by_source_update(
            {q(DELETED_AT): f"'{now.isoformat()}'"}, predicate=live
        )
    elif batch.truncated:
        merger = merger.when_not_matched_by_source_delete()
    try:
        with known_panics_hidden():
            metrics = merger.execute()
    except Exception as exc:
        raise session.failure(exc) from exc
    table = session.after_commit()
    return WriteOutcome(table.version(), added_bytes(table, before), metrics)


def _add_new_columns(session: DeltaSession, schema: pa.Schema) -> None:
    """Add the source's columns the table lacks (a column added mid-stream), as nullable columns.
    A metadata-only commit before the data commit: replaying it is a no-op."""
    table = session.require()
    present = set(arrow_schema(table).names)
    new = [f for f in schema if f.name not in present and f.name not in (OP, KEEP)]
    if new:
        fields = [Field.from_arrow(f) for f in storable_schema(pa.schema(new))]
        table.alter.add_columns(fields)
