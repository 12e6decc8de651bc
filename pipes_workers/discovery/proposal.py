"""The rules that turn a catalog table into a proposed control row.

Watermark: a NOT NULL column that leads an index and is either a timestamp or an integer the source
increments itself (identity, serial, AUTO_INCREMENT). Timestamps win over such integers (they also
see updates); among equals the name hints (`updated_at`, `modified`, `last_update`, …) break the
tie, then column order.

Strategy, first rule that applies:
1. a column the loader would refuse → no row (the table is listed with the refusal);
2. no watermark, or fewer estimated rows than `full_below_rows` (unknown counts as many) → `full`;
3. more estimated bytes than `backfill_above_bytes` and a one-column whole-number key to cut →
   `chunked_backfill` on that key, handing over to incremental;
4. a timestamp watermark and a key → `incremental` (MERGE on the key);
5. an increasing integer watermark and no timestamp column named like an update time →
   `append_only` on it: the table is taken to be insert-only (nothing says when a row changes),
   which the reviewer should confirm;
6. otherwise (a timestamp watermark but no key to merge on; an update-time column that is not
   indexed or may be NULL beside an increasing key) → `full`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from pipes_workers.discovery.catalog import CatalogColumn, CatalogTable
from pipes_workers.discovery.settings import DiscoverSettings

NAME_HINTS = ("updated_at", "update_time", "last_update", "last_updated", "modified_at", "modified",
              "updated", "changed_at", "last_modified", "mtime")  # fmt: skip


@dataclass(frozen=True)
class Proposal:
    """A proposed control row for one table, or `skip_reason` when the table cannot be loaded as is."""

    table: CatalogTable
    load_strategy: str | None
    primary_keys: tuple[str, ...] = ()
    incremental_column: str | None = None
    chunk_column: str | None = None
    chunk_size: int | None = None
    reason: str = ""
    skip_reason: str | None = None


def is_timestamp(column: CatalogColumn) -> bool:
    """True for a column the loader reads as a timestamp."""
    return column.arrow_type is not None and pa.types.is_timestamp(column.arrow_type)


def is_whole_number(column: CatalogColumn) -> bool:
    """True for an integer column, or a decimal without fraction (BIGINT UNSIGNED, NUMBER(38,0))."""
    t = column.arrow_type
    return t is not None and (pa.types.is_integer(t) or (pa.types.is_decimal(t) and t.scale == 0))


def is_increasing_integer(column: CatalogColumn) -> bool:
    """True for a whole-number column the source increments itself."""
    return column.increasing and is_whole_number(column)


def watermark_column(table: CatalogTable) -> CatalogColumn | None:
    """The best watermark column (see the module docstring), or None."""
    candidates = [
        (0 if is_timestamp(c) else 1, _hint_rank(c.name), position, c)
        for position, c in enumerate(table.columns)
        if not c.nullable and c.indexed and (is_timestamp(c) or is_increasing_integer(c))
    ]
    return min(candidates, key=lambda t: t[:3])[3] if candidates else None


def _hint_rank(name: str) -> int:
    """The position of the first name hint the column name ends with (`ModifiedAt`, `row_last_update`
    and `lastupdate` all count: case and underscores are ignored); len(NAME_HINTS) for none."""
    plain = name.lower().replace("_", "")
    for rank, hint in enumerate(NAME_HINTS):
        if plain.endswith(hint.replace("_", "")):
            return rank
    return len(NAME_HINTS)


def propose(table: CatalogTable, settings: DiscoverSettings) -> Proposal:
    """The proposal for one table under `settings` (rules in the module docstring)."""
    if table.refused:
        names = ", ".join(repr(c.name) for c in table.refused)
        return Proposal(
            table, None, skip_reason=f"the loader refuses column(s) {names}: {table.refused[0].refusal}"
        )
    watermark = watermark_column(table)
    key = table.primary_key
    if watermark is None:
        return Proposal(table, "full", key, reason="no indexed NOT NULL timestamp or increasing integer")
    rows, size = table.estimated_rows, table.estimated_bytes
    if rows is not None and rows < settings.full_below_rows:
        return Proposal(table, "full", key, reason=f"about {rows} rows < {settings.full_below_rows}")
    chunk = table.column(key[0]) if len(key) == 1 else None
    if (
        size is not None
        and size > settings.backfill_above_bytes
        and chunk is not None
        and is_whole_number(chunk)
    ):
        return Proposal(
            table, "chunked_backfill", key, watermark.name, chunk.name, settings.chunk_size,
            reason=f"about {size} bytes > {settings.backfill_above_bytes}",
        )  # fmt: skip
    if is_timestamp(watermark) and key:
        return Proposal(table, "incremental", key, watermark.name, reason=f"{table.key_origin} + timestamp")
    changes = next(
        (c.name for c in table.columns if is_timestamp(c) and _hint_rank(c.name) < len(NAME_HINTS)), None
    )
    if is_increasing_integer(watermark) and changes is None:
        return Proposal(
            table, "append_only", key, watermark.name, reason="increasing integer, no timestamp: insert-only?"
        )
    if changes is not None:
        return Proposal(table, "full", key, reason=f"rows change ({changes!r}) but it is no watermark")
    return Proposal(table, "full", key, reason="timestamp but no key to merge on")
