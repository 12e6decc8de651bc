"""Per-batch conversion of ADBC PostgreSQL batches to the declared schema, with the checks the
driver does not make: it decodes `infinity` dates/timestamps and `24:00:00` into out-of-range
numbers, and flattens multi-dimensional arrays. Those fail the load naming the column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from dataloader_contract.errors import PermanentLoadError
from pipes_workers.sources.batches import convert_array

# PostgreSQL's earliest date/timestamp is 4713 BC; anything below is a wrapped ±infinity (or a
# timestamp past year 294247 that overflowed the driver's epoch shift).
_MIN_DAYS = -2_500_000
_MIN_MICROS = -210_866_803_200_000_000
_MAX_TIME_MICROS = 86_400_000_000 - 1


def conform_batch(
    batch: pa.RecordBatch, target: pa.Schema, list_columns: list[str], label: str
) -> pa.RecordBatch:
    """`batch` cast to `target`; extra trailing columns are array_ndims guards for `list_columns`."""
    arrays = []
    for i, field in enumerate(target):
        array = convert_array(batch.column(i), field.type, column=field.name, table=label)
        _check_range(array, field, label)
        arrays.append(array)
    for j, name in enumerate(list_columns):
        ndims = batch.column(len(target) + j)
        if len(ndims) and (pc.max(ndims).as_py() or 1) > 1:
            raise PermanentLoadError(
                f"source table {label}: column {name!r} holds a multi-dimensional array, "
                "which a list column cannot represent; cast it to text in a view"
            )
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _check_range(array: pa.Array, field: pa.Field, label: str) -> None:
    t = field.type
    if pa.types.is_timestamp(t):
        low, high, what = _MIN_MICROS, None, "infinity (or a timestamp beyond year 294247)"
        ints = array.view(pa.int64())
    elif pa.types.is_date32(t):
        low, high, what = _MIN_DAYS, None, "infinity"
        ints = array.view(pa.int32())
    elif pa.types.is_time64(t):
        low, high, what = 0, _MAX_TIME_MICROS, "24:00:00"
        ints = array.view(pa.int64())
    else:
        return
    if array.null_count == len(array):
        return
    bounds = pc.min_max(ints).as_py()
    if bounds["min"] < low or (high is not None and bounds["max"] > high):
        raise PermanentLoadError(
            f"source table {label}: column {field.name!r} holds {what}, which {t} cannot represent; "
            "filter or cast it in a view"
        )
