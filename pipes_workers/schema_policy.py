"""The control row's `schema_policy`, applied to a load's source columns before anything is read.

- `evolve` (default): new source columns are added to the Delta table; a safe widening of a
  column's type (int32 -> int64, float32 -> float64, decimal precision up at the same scale) widens
  the Delta column (lake/type_widening.py; a table over DATALOADER_WIDEN_REWRITE_MAX_MB is refused,
  load_full rewrites it); any other type change is refused (SchemaConflictError
  naming the column and both types, raised by the session's compatibility check).
- `freeze`: any column change against the Delta table (added, removed, type) fails the load with a
  ConfigurationError naming the column.
- `discard_new`: new source columns are neither read nor written; the schema-drift check reports
  them. Type changes are handled as under `evolve`.

A `load_full` (or a table not written yet) takes the source's columns as they are, whatever the policy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest
from pipes_workers.checks import TECHNICAL_PREFIXES
from pipes_workers.lake.history_rows import HISTORY_COLUMNS
from pipes_workers.lake.schema_conform import same_stored_type, storable_schema
from pipes_workers.lake.session import DeltaSession
from pipes_workers.lake.type_widening import check_rewrite_size, is_widening, widen
from pipes_workers.sources.base import SourceColumn, arrow_schema
from pipes_workers.strategies.faults import crash_point

# Strategies whose write replaces the table's schema (or, for a backfill, starts it): no widening.
REPLACES_SCHEMA = ("full", "chunked_backfill")


@dataclass(frozen=True)
class ColumnChanges:
    """How the source's columns differ from the Delta table's (bookkeeping columns left out)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    retyped: tuple[tuple[str, pa.DataType, pa.DataType], ...] = ()  # (column, Delta type, source type)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped)


@dataclass(frozen=True)
class PolicyOutcome:
    """The columns the load reads and writes, and the new source columns it leaves out."""

    columns: list[SourceColumn]
    discarded: tuple[SourceColumn, ...] = field(default_factory=tuple)


def column_changes(
    columns: Sequence[SourceColumn], stored: pa.Schema, *, derived: frozenset[str]
) -> ColumnChanges:
    """The source `columns` (as they would be stored) against the Delta table's `stored` schema,
    ignoring the writer's own columns (`_dataloader*`, generated partition columns `derived`, the
    history columns of an scd2 table)."""
    source = storable_schema(arrow_schema(columns))
    own = derived | frozenset(HISTORY_COLUMNS)
    delta = {
        f.name: f.type for f in stored if not f.name.startswith(TECHNICAL_PREFIXES) and f.name not in own
    }
    return ColumnChanges(
        added=tuple(f.name for f in source if f.name not in delta),
        removed=tuple(name for name in delta if source.get_field_index(name) < 0),
        retyped=tuple(
            (f.name, delta[f.name], f.type)
            for f in source
            if f.name in delta and not same_stored_type(delta[f.name], f.type)
        ),
    )


def apply_schema_policy(
    request: LoadRequest,
    columns: list[SourceColumn],
    destination: DeltaSession,
    *,
    strategy: str,
    log: Callable[[str], None],
) -> PolicyOutcome:
    """The columns this load reads under the row's schema_policy; widens the Delta table's columns
    first when the policy allows (one commit). ConfigurationError under `freeze` on any change."""
    stored = destination.stored_schema()
    # An scd2 table's load_full merges new versions into its history rather than replacing the
    # table: it still widens here, unasked-for size or not, since the reload is the explicit ask.
    if stored is None or (request.load_full and not request.keeps_history):
        return PolicyOutcome(columns)
    changes = column_changes(columns, stored, derived=destination.partitioning.derived_names)
    if request.schema_policy == "freeze" and changes and not request.load_full:
        raise ConfigurationError(_frozen_message(destination.uri, changes))
    discarded: tuple[SourceColumn, ...] = ()
    if request.schema_policy == "discard_new" and changes.added and not request.load_full:
        discarded = tuple(c for c in columns if c.name in changes.added)
        columns = [c for c in columns if c.name not in changes.added]
        log(f"schema_policy discard_new: new source column(s) {', '.join(changes.added)} not written")
    widenings = {name: source for name, delta, source in changes.retyped if is_widening(delta, source)}
    if widenings and strategy not in REPLACES_SCHEMA:
        # Refuse an incompatible change of another column before rewriting the table for nothing.
        destination.check_compatible(arrow_schema([c for c in columns if c.name not in widenings]))
        if not request.load_full:
            check_rewrite_size(destination, widenings, control_key=request.control_key)
        described = ", ".join(f"{name} {stored.field(name).type} -> {t}" for name, t in widenings.items())
        version = widen(destination, widenings)
        crash_point("widen")
        log(f"widened Delta column type(s) {described} (rows rewritten once, Delta version {version})")
    return PolicyOutcome(columns, discarded)


def _frozen_message(uri: str, changes: ColumnChanges) -> str:
    parts = [f"column {name!r} was added in the source" for name in changes.added]
    parts += [f"column {name!r} is gone from the source" for name in changes.removed]
    parts += [
        f"column {name!r} changed type from {delta} in the Delta table to {source} in the source"
        for name, delta, source in changes.retyped
    ]
    return (
        f"{uri}: schema_policy freeze: {'; '.join(parts)}; set schema_policy to evolve or discard_new, "
        "or reload with load_full to take the source's columns"
    )
