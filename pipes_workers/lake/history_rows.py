"""The rows a history (SCD type 2) MERGE reads: each source row as a current version (valid-from
time, row hash), and the staged merge source — every upsert as a `close` and an `insert` row,
every delete as a `delete` row (lake/history.py says how the MERGE uses them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from pipes_workers.lake.row_hash import row_hashes
from pipes_workers.lake.schema_conform import DELETED_AT, Rows

VALID_FROM = "_valid_from"
VALID_TO = "_valid_to"
IS_CURRENT = "_is_current"
ROW_HASH = "_dataloader_row_hash"
ROLE = "_dataloader_scd_role"
# A column a change-log strategy may add to upserts and deletes: when each change happened (its
# `_valid_from`, or a delete's `_valid_to`); not stored.
CHANGED_AT = "_dataloader_changed_at"
HISTORY_COLUMNS = (VALID_FROM, VALID_TO, IS_CURRENT, ROW_HASH)
STAMP = pa.timestamp("us", tz="UTC")
STAGE_FIELDS = (
    pa.field(VALID_FROM, STAMP),
    pa.field(VALID_TO, STAMP),
    pa.field(IS_CURRENT, pa.bool_()),
    pa.field(ROW_HASH, pa.string()),
)


def _data_columns(schema: pa.Schema) -> list[str]:
    return [name for name in schema.names if name not in (*HISTORY_COLUMNS, ROLE, DELETED_AT)]


def versioned(batch: pa.RecordBatch, stamp: datetime, valid_from_column: str | None) -> pa.RecordBatch:
    """`batch` with the four history columns of a current version (CHANGED_AT dropped)."""
    valid_from = _valid_from(batch, stamp, valid_from_column)
    if CHANGED_AT in batch.schema.names:
        batch = batch.drop_columns([CHANGED_AT])
    arrays = [
        valid_from,
        pa.nulls(batch.num_rows, STAMP),
        pa.array([True] * batch.num_rows, pa.bool_()),
        row_hashes(batch, _data_columns(batch.schema)),
    ]
    return pa.RecordBatch.from_arrays(
        [*batch.columns, *arrays], schema=pa.schema([*batch.schema, *STAGE_FIELDS])
    )


def _valid_from(batch: pa.RecordBatch, stamp: datetime, column: str | None) -> pa.Array:
    """The row's `column` (a timestamp; a naive one is read as UTC) or `stamp` where it is NULL or
    later than `stamp` (the load's start: a version is never valid from the future — a row stamped
    in 2087 would be missing from every "as of" query until then)."""
    fallback = pa.scalar(stamp, STAMP)
    if column is None or column not in batch.schema.names:
        return pa.array([stamp] * batch.num_rows, STAMP)
    values = batch.column(column)
    if not pa.types.is_timestamp(values.type):
        return pa.array([stamp] * batch.num_rows, STAMP)
    if values.type.tz is None:
        values = pc.assume_timezone(values, "UTC")
    stamped = pc.fill_null(pc.cast(values, STAMP), fallback)
    return pc.if_else(pc.greater(stamped, fallback), fallback, stamped)


def first_versions(rows: Rows, stamp: datetime, valid_from_column: str | None) -> pa.RecordBatchReader:
    """The first load's rows, each its key's current version."""
    reader = rows.to_reader() if isinstance(rows, pa.Table) else rows
    sample = versioned(pa.RecordBatch.from_pylist([], schema=reader.schema), stamp, valid_from_column)
    batches = (versioned(batch, stamp, valid_from_column) for batch in reader)
    return pa.RecordBatchReader.from_batches(sample.schema, batches)


def staged(
    data: Rows | None,
    deletes: pa.Table | None,
    primary_keys: Sequence[str],
    stamp: datetime,
    valid_from_column: str | None,
    target: pa.Schema,
) -> pa.RecordBatchReader:
    """The merge source: each upsert as a `close` and an `insert` row, each delete as a `delete` row."""
    base = data.schema if data is not None else target
    base = pa.schema([f for f in base if f.name not in (*HISTORY_COLUMNS, ROLE)])
    sample = versioned(pa.RecordBatch.from_pylist([], schema=base), stamp, valid_from_column)
    schema = sample.schema.append(pa.field(ROLE, pa.string()))

    def batches() -> Iterator[pa.RecordBatch]:
        if data is not None:
            reader = data.to_reader() if isinstance(data, pa.Table) else data
            for batch in reader:
                if batch.num_rows:
                    rows = versioned(batch, stamp, valid_from_column)
                    yield _with_role(rows, "close", schema)
                    yield _with_role(rows, "insert", schema)
        if deletes is not None and deletes.num_rows:
            yield _with_role(_delete_rows(deletes, primary_keys, sample.schema, stamp), "delete", schema)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _with_role(batch: pa.RecordBatch, role: str, schema: pa.Schema) -> pa.RecordBatch:
    roles = pa.array([role] * batch.num_rows, pa.string())
    return pa.RecordBatch.from_arrays([*batch.columns, roles], schema=schema)


def _delete_rows(
    deletes: pa.Table, primary_keys: Sequence[str], schema: pa.Schema, stamp: datetime
) -> pa.RecordBatch:
    """Rows of `schema` carrying only the deleted keys and, as `_valid_from`, when they were deleted."""
    rows = deletes.num_rows
    columns = []
    for field in schema:
        if field.name in primary_keys:
            columns.append(deletes.column(field.name).combine_chunks().cast(field.type))
        elif field.name == VALID_FROM and CHANGED_AT in deletes.column_names:
            values = deletes.column(CHANGED_AT).combine_chunks()
            columns.append(pc.fill_null(pc.cast(values, STAMP), pa.scalar(stamp, STAMP)))
        elif field.name == VALID_FROM:
            columns.append(pa.array([stamp] * rows, STAMP))
        else:
            columns.append(pa.nulls(rows, field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
