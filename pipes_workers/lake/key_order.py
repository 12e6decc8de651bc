"""Proof that a stream's primary keys are unique, from the rows as they flow past: when every row's
key is strictly greater than the previous row's (lexicographically over the key columns) and none
is NULL, no key repeats. One wrap-around is allowed: PostgreSQL's synchronised sequential scans
start a large table's scan where another scan is (or last was), so the rows come as two increasing
runs; when the last key is below the first, the runs cannot share a key either.

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
        self.rows = 0
        self.wrapped = False
        self._ordered = bool(self.keys)
        self._first: list[pa.Array] | None = None
        self._last: list[pa.Array] | None = None

    @property
    def abandoned(self) -> bool:
        """True once the proof is given up (a NULL, a second break, an unorderable type)."""
        return not self._ordered

    @property
    def proven(self) -> bool:
        """True while every key seen is unique: increasing, with at most one wrap back below the first."""
        if not self._ordered:
            return False
        if not self.wrapped or self._first is None or self._last is None:
            return True
        return increasing_breaks(self._last, self._first) == 0

    def observe(self, batch: pa.RecordBatch) -> None:
        """Extend the proof over `batch` (the next batch of the stream), or abandon it."""
        if not self._ordered or not batch.num_rows:
            return
        try:
            columns = [batch.column(name) for name in self.keys]
        except KeyError:
            self._ordered = False
            return
        if any(column.null_count for column in columns):
            self._ordered = False
            return
        try:
            breaks = increasing_breaks(
                [c.slice(0, len(c) - 1) for c in columns], [c.slice(1) for c in columns]
            )
            if self._last is not None:
                breaks += increasing_breaks(self._last, [c.slice(0, 1) for c in columns])
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
            self._ordered = False  # a key type Arrow cannot order: leave it to the scan
            return
        if breaks > 1 or (breaks == 1 and self.wrapped):
            self._ordered = False
            return
        self.wrapped = self.wrapped or breaks == 1
        self.rows += batch.num_rows
        if self._first is None:
            self._first = [c.slice(0, 1) for c in columns]
        self._last = [c.slice(len(c) - 1, 1) for c in columns]


def strictly_increasing(before: Sequence[pa.Array], after: Sequence[pa.Array]) -> bool:
    """True when, row by row, the key `after[*][i]` is lexicographically greater than `before[*][i]`."""
    return increasing_breaks(before, after) == 0


def increasing_breaks(before: Sequence[pa.Array], after: Sequence[pa.Array]) -> int:
    """How many rows i have a key `after[*][i]` that is not lexicographically greater than `before[*][i]`.

    Both sides hold the same key columns, of equal length, without NULLs. NaN compares false, so a
    float key holding NaN never counts as increasing.
    """
    if not len(before[0]):
        return 0
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
    return len(greater) - int(pc.sum(greater.cast(pa.int64())).as_py() or 0)
