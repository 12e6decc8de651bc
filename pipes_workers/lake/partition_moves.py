"""The partitions a pruned MERGE reads: those its source rows fall in, and those its keys are stored
in now.

Pruned to the source rows' own partitions, a merge would miss a row whose partition value changed
at the source (a customer moved from 'US' to 'EU'; `month(updated_at)` of a row updated the next
month): its stored version sits in a partition the predicate leaves out, is not matched, and the new
version is inserted beside it — two rows with one key. So the term also names the partitions where
the source's keys are stored now, read from the target's key and partition columns only, in the
source's key range (file statistics skip the other files) and outside the source's own partitions
(partition values skip those). The MERGE then matches the stored row, and its update writes the row
into its new partition.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from pipes_workers.lake.partitioning import Partitioning, sql_literal
from pipes_workers.lake.table_facts import arrow_schema, quote_identifier, stored_keys


def merge_pruning_term(
    table: DeltaTable, rows: pa.Table, primary_keys: Sequence[str], partitioning: Partitioning
) -> str | None:
    """The MERGE term on the target's partition columns covering every partition `rows` fall in and
    every partition a row with one of their keys is stored in now; None when nothing can be pruned
    (unpartitioned, too many values, no literal-safe column)."""
    term = partitioning.pruning_term(rows)
    if term is None:
        return None
    columns = [name for name in partitioning.names if name in rows.column_names]
    stored = stored_elsewhere(table, rows, primary_keys, columns, partitioning.outside_condition(rows))
    if not stored.num_rows:
        return term
    both = {
        name: pa.chunked_array(
            rows.column(name).chunks + stored.column(name).cast(rows.schema.field(name).type).chunks,
            rows.schema.field(name).type,
        )
        for name in columns
    }
    return partitioning.pruning_term(pa.table(both))


def stored_elsewhere(
    table: DeltaTable,
    rows: pa.Table,
    primary_keys: Sequence[str],
    columns: Sequence[str],
    outside: str | None,
) -> pa.Table:
    """The key and partition `columns` of the target's rows that hold a key of `rows` and lie where
    `outside` holds (the partitions the source rows leave out)."""
    read = list(dict.fromkeys([*primary_keys, *columns]))
    stored_names = arrow_schema(table).names
    # A key column the table lacks yet (added by this merge) is NULL in every stored row: no match.
    if outside is None or not rows.num_rows or any(name not in stored_names for name in read):
        return rows.select(read).slice(0, 0)
    where = [f"({outside})", *_key_range(rows, primary_keys[0])]
    stored = stored_keys(table, read, where=" AND ".join(where))
    for key in primary_keys:
        wanted = rows.column(key).cast(stored.schema.field(key).type).combine_chunks()
        stored = stored.filter(pc.is_in(stored.column(key), value_set=wanted, skip_nulls=True))
    if len(primary_keys) > 1 and stored.num_rows:
        # Each key column matched on its own: keep the rows whose whole key is in `rows`.
        incoming = set(zip(*(rows.column(k).to_pylist() for k in primary_keys), strict=True))
        found = zip(*(stored.column(k).to_pylist() for k in primary_keys), strict=True)
        stored = stored.filter(pa.array([key in incoming for key in found], pa.bool_()))
    return stored


def _key_range(rows: pa.Table, key: str) -> list[str]:
    """`key BETWEEN <min> AND <max>` of `rows` (no condition when the key's type has no safe
    literal): file statistics then skip the target files outside the source's keys."""
    bounds = pc.min_max(rows.column(key)).as_py()
    low, high = sql_literal(bounds["min"]), sql_literal(bounds["max"])
    if low is None or high is None:
        return []
    return [f"{quote_identifier(key)} BETWEEN {low} AND {high}"]
