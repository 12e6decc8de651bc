"""Apply one collapsed batch of captured changes to a history (scd2) table as ONE commit.

Each key's last change of the batch (cdc/apply.py `collapse`) becomes a version through
lake/history.py's MERGE: an upsert closes the current version and inserts the new one (nothing
happens when its values equal the current version's), a delete closes the current version (never
removes it, delete_mode soft or hard alike; none ignores deletes), and a TRUNCATE closes every
current version the rest of the batch does not write. `_valid_from` of a new version, and
`_valid_to` of a version a delete closes, is the change's source commit time (`Change.committed_at`,
UTC: PostgreSQL's Commit message, the binlog's XID event in whole seconds), or the apply's own time
when the log gave none; a TRUNCATE closes at the apply's time. Versions a key went through inside
one batch are not kept: only its last change is.

An update that did not carry an unchanged TOASTed column (PostgreSQL) gets the value of the key's
current version, read from Delta for just those keys and columns, so the new version never holds
NULL for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipes_workers.cdc.apply import Collapsed
from pipes_workers.cdc.arrays import timestamps
from pipes_workers.cdc.capture import Change, ChangeCapture
from pipes_workers.lake.history import CHANGED_AT, IS_CURRENT, CloseMissing, apply_history
from pipes_workers.lake.history_rows import STAMP
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.table_facts import arrow_schema
from pipes_workers.lake.writes import WriteOutcome


def apply_versions(
    session: DeltaSession,
    capture: ChangeCapture,
    batch: Collapsed,
    keys: Sequence[str],
    marker: CommitMarker,
    *,
    changed_at: datetime,
    log: Callable[[str], None],
) -> WriteOutcome:
    """Record `batch` as versions in one commit carrying `marker` (its metrics hold
    `versions_added` and `versions_closed`). `changed_at`: now, the latest time a version may start."""
    upserts = [c for c in batch.changes if c.op != "delete"]
    deletes = [c for c in batch.changes if c.op == "delete"]
    rows = None
    if upserts:
        rows = capture.to_arrow([c.values for c in upserts], capture.table_schema)
        rows = _dated(carry_unchanged(session, rows, upserts, keys, log), upserts)
    gone = None
    if deletes:
        key_schema = pa.schema([capture.table_schema.field(k) for k in keys])
        gone = _dated(capture.to_arrow([c.values for c in deletes], key_schema), deletes)
    return apply_history(
        session,
        rows,
        keys,
        marker,
        changed_at=changed_at,
        valid_from_column=CHANGED_AT,
        deletes=gone,
        close_missing=CloseMissing() if batch.truncated else None,
    )


def _dated(rows: pa.Table, changes: Sequence[Change]) -> pa.Table:
    """`rows` with each change's commit time as CHANGED_AT (NULL: the apply's time)."""
    return rows.append_column(
        pa.field(CHANGED_AT, STAMP), timestamps([c.committed_at for c in changes], STAMP)
    )


def carry_unchanged(
    session: DeltaSession,
    rows: pa.Table,
    changes: Sequence[Change],
    keys: Sequence[str],
    log: Callable[[str], None],
) -> pa.Table:
    """`rows` (one per change) with the columns each change left unchanged filled from its key's
    current version in Delta; a key without one keeps NULL there (logged)."""
    wanted = sorted({n for c in changes for n in c.unchanged if n in rows.schema.names})
    table = session.table()
    if not wanted or table is None:
        return rows
    stored = arrow_schema(table)
    readable = [n for n in wanted if n in stored.names]
    which = [i for i, c in enumerate(changes) if c.unchanged]
    chosen = pa.array(np.array(which, dtype=np.int64))
    asked = pa.table({k: rows.column(k).take(chosen).cast(stored.field(k).type) for k in keys})
    where = pc.field(IS_CURRENT) == pa.scalar(True)
    for key in keys:
        where = where & pc.field(key).isin(asked.column(key).unique())
    current = table.to_pyarrow_dataset().to_table(columns=[*keys, *readable], filter=where)
    found = {tuple(r[k] for k in keys): i for i, r in enumerate(current.select(list(keys)).to_pylist())}
    asked_keys = [tuple(r[k] for k in keys) for r in asked.to_pylist()]
    at = dict(zip(which, (found.get(k) for k in asked_keys), strict=True))
    missing = sorted({k for k in asked_keys if k not in found}, key=str)
    if missing:
        log(
            f"{session.uri}: no current version of key(s) {missing[:5]} to take unchanged TOAST values "
            "from: those columns of the new version stay NULL"
        )
    for name in readable:
        take = [at.get(i) if name in c.unchanged else None for i, c in enumerate(changes)]
        carried = np.array([t is not None for t in take], dtype=bool)
        if not carried.any():
            continue
        indices = pa.array(np.array([t or 0 for t in take], dtype=np.int64))
        field = rows.schema.field(name)
        values = current.column(name).take(indices).combine_chunks().cast(field.type)
        kept = rows.column(name).combine_chunks()
        filled = pc.if_else(pa.array(carried), values, kept)
        rows = rows.set_column(rows.schema.get_field_index(name), field, filled)
    return rows
