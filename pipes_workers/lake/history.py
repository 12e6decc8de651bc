"""History (SCD type 2) on a Delta table: each change closes the current version and inserts the new
one, in ONE MERGE (one commit, guarded by the load's app transaction like every write).

Columns: `_valid_from` and `_valid_to` (timestamp, UTC; `_valid_to` NULL while current),
`_is_current` (boolean) and `_dataloader_row_hash` (the data columns' fingerprint, row_hash.py).

The merge source is staged from the changed rows: every upsert appears twice, once with role
`close` and once with role `insert`, and every delete once with role `delete`. The MERGE predicate
matches a current version with the same key when the `close` copy's hash differs (a change: that
version is closed), when the `insert` copy's hash is equal (an unchanged re-read: nothing happens)
or for a `delete` (closed, never removed). An `insert` copy left unmatched — a new key or a changed
row — is inserted as the current version. So an unchanged re-read creates no version, and no target
row is matched by two source rows. With `close_missing`, current versions no source row matched
(inside a rolling window, or anywhere for `load_full`) are closed too.

`apply_history` takes upserts and deletes together, so a change-log strategy (cdc) can hand it one
collapsed batch of both with per-row `_valid_from` times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, SchemaConflictError
from pipes_workers.lake.history_rows import (
    CHANGED_AT,
    HISTORY_COLUMNS,
    IS_CURRENT,
    ROLE,
    ROW_HASH,
    STAMP,
    VALID_FROM,
    VALID_TO,
    first_versions,
    staged,
)
from pipes_workers.lake.known_panics import known_panics_hidden
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.schema_conform import DELETED_AT, Rows, conform, quote_column
from pipes_workers.lake.table_facts import arrow_schema, file_paths
from pipes_workers.lake.write_failures import WatchedRows
from pipes_workers.lake.writes import (
    WriteOutcome,
    _guard,
    _outcome,
    _write_failure,
    overwrite,
    refuse_backticks,
    start_merge,
)

if TYPE_CHECKING:
    from dataloader_contract.request import LoadRequest
    from pipes_workers.lake.session import DeltaSession

__all__ = [
    "CHANGED_AT",
    "HISTORY_COLUMNS",
    "IS_CURRENT",
    "VALID_FROM",
    "VALID_TO",
    "CloseMissing",
    "apply_history",
    "close_versions",
    "has_history",
    "refuse_history_mismatch",
]


@dataclass(frozen=True)
class CloseMissing:
    """Close the current versions no source row matched: all of them (`column` None, load_full) or
    those whose `column` >= `start` (a rolling window)."""

    column: str | None = None
    start: object = None


def apply_history(
    session: DeltaSession,
    upserts: Rows | None,
    primary_keys: Sequence[str],
    marker: CommitMarker,
    *,
    changed_at: datetime,
    valid_from_column: str | None = None,
    deletes: pa.Table | None = None,
    close_missing: CloseMissing | None = None,
    replace: bool = False,
) -> WriteOutcome:
    """Record `upserts` (new or changed rows) and `deletes` (key columns) as versions, in one commit.

    Args:
        session: the load's Delta session.
        upserts: rows read from the source (every column), or None.
        primary_keys: the key columns.
        marker: the commit's app transaction and metadata.
        changed_at: `_valid_from` of rows without one of their own, and `_valid_to` of deletes.
        valid_from_column: a timestamp column whose value is each row's `_valid_from` (NULL: changed_at).
            A change-log strategy passes CHANGED_AT here (each change's commit time; not stored).
        deletes: the keys whose current version the source deleted (a CHANGED_AT column there is
            the time of each delete).
        close_missing: also close current versions no source row matched.
        replace: start the history afresh (load_full onto a table written without history).

    Returns:
        The commit's WriteOutcome; `metrics` holds `versions_added` and `versions_closed`.
    """
    table = session.table()
    stamp = changed_at.astimezone(UTC)
    if upserts is not None:
        refuse_history_columns(upserts.schema, session.uri)
        refuse_backticks(session.uri, upserts.schema)
    if table is None or replace:
        if upserts is None:
            raise ConfigurationError(f"{session.uri}: no Delta table to close versions in")
        rows = conform(upserts, None, uri=session.uri, soft_delete=False)
        first = first_versions(rows, stamp, valid_from_column)
        outcome = overwrite(session, first, marker)
        added = session.row_count()
        return WriteOutcome(
            outcome.delta_version, outcome.bytes_written, {"versions_added": added, "versions_closed": 0}
        )
    target = arrow_schema(table)
    if IS_CURRENT not in target.names:
        raise ConfigurationError(
            f"{session.uri}: history_mode scd2 on a table written without history (no {IS_CURRENT} "
            "column); set load_full on the row to rebuild it with history from now on"
        )
    _guard(session, table, marker)
    before = file_paths(table)
    data = conform(upserts, target, uri=session.uri, soft_delete=False) if upserts is not None else None
    source: Rows = staged(data, deletes, primary_keys, stamp, valid_from_column, target)
    # A new version lands in its own partition (derived columns computed after the row hash, as
    # on the first load's overwrite); close and delete rows only update the version they match.
    source = session.partitioning.with_columns(source, uri=session.uri)
    in_memory = isinstance(upserts, pa.Table) or upserts is None
    if in_memory:  # a small read held whole: delta-rs can then skip files outside its key range
        source = source.read_all()
    watched = WatchedRows(source)
    keys = " AND ".join(f"target.{quote_column(k)} = source.{quote_column(k)}" for k in primary_keys)
    role, digest = f"source.{quote_column(ROLE)}", quote_column(ROW_HASH)
    predicate = (
        f"{keys} AND target.{quote_column(IS_CURRENT)} AND ("
        f"({role} = 'close' AND target.{digest} <> source.{digest}) OR "
        f"({role} = 'insert' AND target.{digest} = source.{digest}) OR {role} = 'delete')"
    )
    closed = {quote_column(VALID_TO): f"source.{quote_column(VALID_FROM)}", quote_column(IS_CURRENT): "false"}
    try:
        merger = (
            start_merge(table, watched.rows, predicate, marker, streamed=not in_memory)
            .when_matched_update(closed, predicate=f"{role} <> 'insert'")
            .when_not_matched_insert_all(predicate=f"{role} = 'insert'", except_cols=[ROLE])
        )
        if close_missing is not None:
            merger = merger.when_not_matched_by_source_update(
                {quote_column(VALID_TO): _literal(stamp, STAMP), quote_column(IS_CURRENT): "false"},
                predicate=_missing_predicate(close_missing, target),
            )
        with known_panics_hidden():
            metrics = merger.execute()
    except Exception as exc:
        raise _write_failure(session, exc, watched) from None
    metrics = {
        **metrics,
        "versions_added": int(metrics.get("num_target_rows_inserted", 0)),
        "versions_closed": int(metrics.get("num_target_rows_updated", 0)),
    }
    return _outcome(session, before, metrics)


def close_versions(
    session: DeltaSession, keys: pa.Table, primary_keys: Sequence[str], marker: CommitMarker
) -> tuple[WriteOutcome, int]:
    """Close, in one commit, the current versions of `keys` (deleted at the source, now); returns
    the commit and the versions closed."""
    outcome = apply_history(session, None, primary_keys, marker, changed_at=datetime.now(UTC), deletes=keys)
    return outcome, int(outcome.metrics["versions_closed"])


def has_history(schema: pa.Schema | None) -> bool:
    """True when a table of `schema` keeps history (it has `_is_current`)."""
    return schema is not None and IS_CURRENT in schema.names


def refuse_history_mismatch(request: LoadRequest, schema: pa.Schema | None, uri: str) -> None:
    """ConfigurationError when a table keeps history but the row's history_mode is none (a merge
    would overwrite versions as if they were rows); load_full (which replaces the table) is allowed."""
    if has_history(schema) and not request.keeps_history and not request.load_full:
        raise ConfigurationError(
            f"{request.control_key}: {uri} keeps history (history_mode scd2) but the row's history_mode "
            "is none; set history_mode back to scd2, or set load_full to replace it with current rows only"
        )


def refuse_history_columns(schema: pa.Schema, uri: str) -> None:
    """SchemaConflictError when the source has a column named like one history reserves."""
    clash = [name for name in (*HISTORY_COLUMNS, ROLE, DELETED_AT) if name in schema.names]
    if clash:
        raise SchemaConflictError(
            f"{uri}: the source has column(s) {', '.join(clash)}, which history_mode scd2 reserves"
        )


def _missing_predicate(close: CloseMissing, target: pa.Schema) -> str:
    """Which unmatched target rows a CloseMissing closes: current ones (inside the window)."""
    current = f"target.{quote_column(IS_CURRENT)}"
    if close.column is None:
        return current
    dtype = target.field(close.column).type
    return f"{current} AND target.{quote_column(close.column)} >= {_literal(close.start, dtype)}"


def _literal(value: object, dtype: pa.DataType) -> str:
    """`value` as a DataFusion SQL literal of Arrow type `dtype` (dates and timestamps)."""
    if pa.types.is_date(dtype):
        return f"arrow_cast('{value}', 'Date32')"
    if pa.types.is_timestamp(dtype):
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if dtype.tz is not None:
            text = moment.astimezone(UTC).isoformat() if moment.tzinfo else moment.isoformat() + "+00:00"
            return f"arrow_cast('{text}', 'Timestamp(Microsecond, Some(\"UTC\"))')"
        naive = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        return f"arrow_cast('{naive.isoformat()}', 'Timestamp(Microsecond, None)')"
    raise ConfigurationError(f"cannot close versions by a column of type {dtype}")
