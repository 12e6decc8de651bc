"""A unique-keys claim for an append, proven while the rows stream into the write.

Rows that hold each key once, all above every key the table already holds, cannot repeat a key of a
table whose keys were unique. Whether an append's rows are such rows is only known once they have
gone past — but the claim must be in the commit, which is written as the stream ends. So the append
is written claiming, and a ClaimGuard watches its stream: the first batch that breaks the order
raises ClaimBroken inside the stream, which stops the write before it commits; the strategy then
reads and appends the same rows again without a claim. The guard needs an integer first key column
(its upper bound comes exact from the Delta file statistics) and, for a table whose keys no claim
covers, one scan of the keys before the append — what the check would otherwise scan after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from pipes_workers.lake.key_order import KeyOrder

NOT_INCREASING = "appended keys not increasing above the table's"


class ClaimBroken(Exception):
    """Raised inside an append's stream when its rows cannot carry the unique-keys claim."""


@dataclass(frozen=True)
class AppendClaim:
    """What an append may claim: `keys` unique after it, made onto version `base` (-1: a new table),
    provided every appended first key column value is above `above` (None: the table has no row)."""

    keys: tuple[str, ...]
    base: int
    above: int | None


class ClaimGuard:
    """Checks each batch of an append's stream against its claim, beside the stream's KeyOrder.

    Args:
        claim: the claim the append's commit carries.
        order: the stream's key order, observed on each batch before the guard sees it.
    """

    def __init__(self, claim: AppendClaim, order: KeyOrder) -> None:
        self.claim = claim
        self.order = order
        self.broken: str | None = None

    def observe(self, batch: pa.RecordBatch) -> None:
        """Raise ClaimBroken when `batch` repeats, disorders or undercuts a key."""
        if self.order.abandoned:
            self._break()
        if self.claim.above is not None and batch.num_rows:
            lowest = pc.min(batch.column(self.claim.keys[0])).as_py()
            if lowest is None or lowest <= self.claim.above:
                self._break()

    def finish(self) -> None:
        """Raise ClaimBroken when the stream as a whole did not keep its keys unique (a wrap-around
        that ended above where it began)."""
        if not self.order.proven:
            self._break()

    def _break(self) -> None:
        self.broken = NOT_INCREASING
        raise ClaimBroken(NOT_INCREASING)


def claimable_key_type(dtype: pa.DataType) -> bool:
    """Whether a first key column of `dtype` can carry an append's claim (exact file statistics)."""
    return pa.types.is_integer(dtype)
