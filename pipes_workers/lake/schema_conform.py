"""The schema a load stores: every column nullable, time of day as text, shared columns cast to the
table's types (SchemaConflictError when a change is not lossless), and a soft-delete table's live
marker `_dataloader_deleted_at`."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from dataloader_contract.errors import SchemaConflictError

# Rows to write: a stream (consumed once) or, for a merge of a small read, a table held in memory.
Rows = pa.RecordBatchReader | pa.Table
# delete_mode soft: when the source stopped having the row (NULL for live rows).
DELETED_AT = "_dataloader_deleted_at"
DELETED_AT_TYPE = pa.timestamp("us", tz="UTC")


def quote_column(name: str) -> str:
    """A column name as a backtick-quoted identifier for Delta (DataFusion) SQL predicates."""
    return "`" + name.replace("`", "``") + "`"


def conform(data: Rows, table_schema: pa.Schema | None, *, uri: str, soft_delete: bool) -> Rows:
    """`data` with the schema to store: `storable_schema`, and with a table, shared columns cast to
    the table's types (SchemaConflictError when a change is not lossless). A soft-delete table's
    rows get `_dataloader_deleted_at` NULL: they are live."""
    if soft_delete:
        data = with_live_marker(data, uri)
    wanted = storable_schema(data.schema)
    if table_schema is not None:
        wanted = conformed_schema(wanted, table_schema, table_name=uri)
    if wanted.equals(data.schema):
        return data
    if isinstance(data, pa.Table):
        return data.cast(wanted)
    return pa.RecordBatchReader.from_batches(wanted, _cast_batches(data, wanted))


def with_live_marker(data: Rows, uri: str) -> Rows:
    """`data` with `_dataloader_deleted_at` NULL on every row (SchemaConflictError when the source
    has that column itself)."""
    if DELETED_AT in data.schema.names:
        raise SchemaConflictError(
            f"{uri}: the source has a column {DELETED_AT!r}, which delete_mode soft reserves"
        )
    marker_field = pa.field(DELETED_AT, DELETED_AT_TYPE)
    if isinstance(data, pa.Table):
        return data.append_column(marker_field, pa.nulls(data.num_rows, DELETED_AT_TYPE))
    schema = data.schema.append(marker_field)
    batches = (
        pa.RecordBatch.from_arrays([*batch.columns, pa.nulls(batch.num_rows, DELETED_AT_TYPE)], schema=schema)
        for batch in data
    )
    return pa.RecordBatchReader.from_batches(schema, batches)


def conformed_schema(source: pa.Schema, target: pa.Schema, *, table_name: str) -> pa.Schema:
    """The schema to write `source` into a table with `target`: shared columns take the table's type.

    Raises:
        SchemaConflictError: a shared column's type cannot be cast without loss.
    """
    fields = []
    for src in source:
        index = target.get_field_index(src.name)
        if index < 0:
            fields.append(src)
            continue
        dst = target.field(index)
        if not _castable(src.type, dst.type):
            raise SchemaConflictError(
                f"{table_name}: column {src.name!r} changed type from {dst.type} in the Delta table to "
                f"{src.type} in the source; reload with load_full to replace the schema"
            )
        fields.append(pa.field(src.name, dst.type, nullable=True))
    return pa.schema(fields)


def _castable(src: pa.DataType, dst: pa.DataType) -> bool:
    if _normal(src) == _normal(dst):
        return True
    if pa.types.is_integer(src) and pa.types.is_integer(dst):
        return dst.bit_width >= src.bit_width and (
            pa.types.is_signed_integer(dst) or not pa.types.is_signed_integer(src)
        )
    if pa.types.is_decimal(src) and pa.types.is_decimal(dst):
        return src.scale == dst.scale and src.precision <= dst.precision
    if pa.types.is_floating(src) and pa.types.is_floating(dst):
        return dst.bit_width >= src.bit_width
    return False


def _normal(dtype: pa.DataType) -> str:
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return "binary"
    if pa.types.is_timestamp(dtype):
        return f"timestamp[{'tz' if dtype.tz else 'ntz'}]"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return f"list<{_normal(dtype.value_type)}>"
    return str(dtype)


def same_stored_type(stored: pa.DataType, source: pa.DataType) -> bool:
    """`stored` (a Delta column's type) and `source` (a source column's, as stored) are equal up to the widenings the writer applies losslessly (string vs large_string and the like)."""
    if stored.equals(source):
        return True
    text = (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)
    binary = (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view)
    for family in (text, binary):
        if any(f(stored) for f in family) and any(f(source) for f in family):
            return True
    if pa.types.is_timestamp(stored) and pa.types.is_timestamp(source):
        return (stored.tz is None) == (source.tz is None)
    return False


def _cast_batches(data: pa.RecordBatchReader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in data:
        yield batch.cast(schema)


def storable_schema(schema: pa.Schema) -> pa.Schema:
    """The schema Delta stores for source rows of `schema`: every column nullable, and time of day
    (which Delta has no type for) as its fixed-width text `HH:MM:SS.ffffff`, which sorts like the time."""
    return pa.schema(
        [pa.field(f.name, _storable_type(f.type), nullable=True, metadata=f.metadata) for f in schema],
        metadata=schema.metadata,
    )


def _storable_type(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_time(dtype):
        return pa.string()
    if pa.types.is_list(dtype):
        return pa.list_(_storable_type(dtype.value_type))
    return dtype
