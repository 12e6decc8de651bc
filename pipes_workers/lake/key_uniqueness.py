"""Whether key columns hold duplicate or NULL keys: a tally of a table of key columns.

A single integer/date/timestamp key is sorted and its neighbours compared, in a fraction of a hash
aggregation's time and memory (10M int64 keys: 0.1 s and 170 MB instead of 2 s and 830 MB); other
keys (text, composite) are grouped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

SAMPLES = 5


@dataclass(frozen=True)
class KeyTally:
    """Rows, rows with a NULL key part, duplicated keys and the rows carrying them, a few samples."""

    rows: int
    null_rows: int
    duplicate_keys: int
    duplicate_rows: int
    samples: tuple[str, ...] = ()

    @property
    def unique(self) -> bool:
        """No NULL key part and no key twice."""
        return self.null_rows == 0 and self.duplicate_keys == 0


def tally_keys(names: Sequence[str], keys: pa.Table) -> KeyTally:
    """Count NULL and duplicate keys over the `names` columns of `keys`."""
    names = list(names)
    null_rows = 0
    if keys.num_rows:
        mask = None
        for name in names:
            column_mask = pc.is_null(keys[name])
            mask = column_mask if mask is None else pc.or_(mask, column_mask)
        null_rows = int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0)
    if len(names) == 1 and _sortable(keys.schema.field(names[0]).type):
        duplicate_keys, duplicate_rows, samples = _duplicates_by_sorting(names[0], keys[names[0]])
    else:
        duplicate_keys, duplicate_rows, samples = _duplicates_by_grouping(names, keys.select(names))
    return KeyTally(keys.num_rows, null_rows, duplicate_keys, duplicate_rows, tuple(samples))


def _sortable(dtype: pa.DataType) -> bool:
    """Fixed-width key types numpy sorts exactly: integers, dates, timestamps."""
    return pa.types.is_integer(dtype) or pa.types.is_date(dtype) or pa.types.is_timestamp(dtype)


def _duplicates_by_sorting(name: str, column: pa.ChunkedArray) -> tuple[int, int, list[str]]:
    import numpy as np

    present = pc.drop_null(column)
    if isinstance(present, pa.ChunkedArray):
        present = present.combine_chunks()
    # The same bits as a signed integer of the same width: equal keys stay equal (all this needs).
    int_type = {8: pa.int8(), 16: pa.int16(), 32: pa.int32(), 64: pa.int64()}[present.type.bit_width]
    values = np.sort(_as_numpy(present.view(int_type)))
    repeated = values[1:][values[1:] == values[:-1]]
    if not len(repeated):
        return 0, 0, []
    keys, extra = np.unique(repeated, return_counts=True)
    originals = pa.array(keys, int_type).view(present.type)
    samples = [
        f"{name}={value} ({count + 1}x)"
        for value, count in zip(originals.to_pylist()[:SAMPLES], extra[:SAMPLES], strict=False)
    ]
    return len(keys), int(extra.sum()) + len(keys), samples


def _as_numpy(array: pa.Array) -> Any:
    """The values of a null-free fixed-width integer array as a numpy view of its buffer.
    (`Array.to_numpy` would import pandas — 0.15 s of a worker that never uses it.)"""
    import numpy as np

    dtype = np.dtype(array.type.to_pandas_dtype())
    return np.frombuffer(
        array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize
    )


def _duplicates_by_grouping(names: list[str], keys: pa.Table) -> tuple[int, int, list[str]]:
    counts = keys.group_by(names).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts["count_all"], 1))
    duplicate_rows = int(pc.sum(duplicated["count_all"]).as_py() or 0) if duplicated.num_rows else 0
    samples = [
        ", ".join(f"{k}={row[k]}" for k in names) + f" ({row['count_all']}x)"
        for row in duplicated.slice(0, SAMPLES).to_pylist()
    ]
    return duplicated.num_rows, duplicate_rows, samples
