"""Proof that a stream's primary keys are unique, from the rows as they flow past: when every row's
key is strictly greater than the previous row's (lexicographically over the key columns) and none
is NULL, no key repeats.

Sources usually return a table in key order (PostgreSQL's heap in insertion order, MySQL's InnoDB
clustered index), so a full load can settle the uniqueness check from what its write already saw,
at the cost of one vectorised comparison per batch, instead of scanning the written table's keys
again. When the order does not hold (a NULL key, a key out of order, a type Arrow cannot compare),
the proof is abandoned and the check scans the Delta table as before: a duplicate is still found.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc


class KeyOrder:
    """Watches the key columns of consecutive batches; `proven` while they stay strictly increasing.

    Args:
        keys: the primary key column names (empty: nothing to prove, `proven` is False).
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self.keys = tuple(keys)
        self.proven = bool(self.keys)
        self.rows = 0
        self._last: list[pa.Array] | None = None

    def observe(self, batch: pa.RecordBatch) -> None:
        """Extend the proof over `batch` (the next batch of the stream), or abandon it."""
        if not self.proven or not batch.num_rows:
            return
        try:
            columns = [batch.column(name) for name in self.keys]
        except KeyError:
            self.proven = False
            return
        if any(column.null_count for column in columns):
            self.proven = False
            return
        try:
            inside = strictly_increasing(
                [c.slice(0, len(c) - 1) for c in columns], [c.slice(1) for c in columns]
            )
            across = self._last is None or strictly_increasing(self._last, [c.slice(0, 1) for c in columns])
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            self.proven = False  # a key type Arrow cannot order: leave it to the scan
            return
        self.proven = inside and across
        self.rows += batch.num_rows
        self._last = [c.slice(len(c) - 1, 1) for c in columns]


def strictly_increasing(before: Sequence[pa.Array], after: Sequence[pa.Array]) -> bool:
    """True when, row by row, the key `after[*][i]` is lexicographically greater than `before[*][i]`.

    Both sides hold the same key columns, of equal length, without NULLs. NaN compares false, so a
    float key holding NaN never counts as increasing.
    """
    if not len(before[0]):
        return True
    greater: pa.Array | None = None  # rows already decided greater on an earlier key column
    tied: pa.Array | None = None  # rows equal on every key column so far
    last = len(before) - 1
    for i, (left, right) in enumerate(zip(before, after, strict=True)):
        here = pc.less(left, right)
        step = here if tied is None else pc.and_(tied, here)
        greater = step if greater is None else pc.or_(greater, step)
        if i < last:
            same = pc.equal(left, right)
            tied = same if tied is None else pc.and_(tied, same)
    assert greater is not None
    return bool(pc.all(greater).as_py())
