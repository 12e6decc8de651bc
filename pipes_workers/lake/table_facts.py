"""What an open Delta table tells without reading its data files: schema, add actions (one row per
data file, with its statistics), row count and key bounds from those statistics; and its key
columns, read by delta-rs's own query engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, QueryBuilder


def arrow_schema(table: DeltaTable) -> pa.Schema:
    """The table's schema as Arrow."""
    return pa.schema(table.schema().to_arrow())


def add_actions(table: DeltaTable) -> pa.Table:
    """The current version's add actions (one row per data file) as a pyarrow Table.

    Read through the Arrow stream interface: `pa.table(...)` would first ask whether the object is a
    pandas DataFrame, importing pandas (0.15 s) into a worker that never uses it."""
    return pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()


def file_paths(table: DeltaTable | None) -> set[str]:
    """The data file paths of the current version (none without a table)."""
    if table is None:
        return set()
    return set(add_actions(table).column("path").to_pylist())


def added_bytes(table: DeltaTable, before: set[str]) -> int:
    """Bytes of the current version's data files that are not in `before`."""
    actions = add_actions(table)
    paths = actions.column("path").to_pylist()
    sizes = actions.column("size_bytes").to_pylist()
    return int(sum(size for path, size in zip(paths, sizes, strict=True) if path not in before))


def upper_bound(table: DeltaTable, column: str) -> tuple[Any, bool]:
    """The greatest value of `column` by the log's file statistics, and whether it is known (False
    when a file with rows has no maximum recorded); (None, True) for a table without rows."""
    actions = add_actions(table)
    name = f"max.{column}"
    if not actions.num_rows:
        return None, True
    if name not in actions.column_names or "num_records" not in actions.column_names:
        return None, False
    if actions.column("num_records").null_count:  # a file without statistics: its keys are unknown
        return None, False
    with_rows = actions.filter(pc.greater(actions.column("num_records"), 0))
    if with_rows.column(name).null_count:
        return None, False
    return pc.max(with_rows.column(name)).as_py(), True


def counted_rows(table: DeltaTable) -> int | None:
    """The table's rows from the log's per-file `numRecords` (no data file opened, and no
    `pyarrow.dataset` import, which pulls in pandas); None when a file has no count or a deletion
    vector, so the caller counts the data instead."""
    actions = add_actions(table)
    if "num_records" not in actions.column_names or actions.column("num_records").null_count:
        return None
    for name in actions.column_names:
        if "deletion" in name.lower() and actions.column(name).null_count < actions.num_rows:
            return None
    return int(pc.sum(actions.column("num_records")).as_py() or 0)


def stored_keys(table: DeltaTable, keys: Sequence[str], *, where: str | None = None) -> pa.Table:
    """Only the `keys` columns of every row of `table` (of the rows matching the SQL condition
    `where`), read by delta-rs's own query engine: on 10M rows 0.3 s against 0.5–0.8 s through
    `pyarrow.dataset`, which would also import pandas (0.15 s)."""
    columns = ", ".join(quote_identifier(name) for name in keys)
    condition = f" WHERE {where}" if where else ""
    rows = QueryBuilder().register("keys_of", table).execute(f"SELECT {columns} FROM keys_of{condition}")
    keys_read = pa.RecordBatchReader.from_stream(rows).read_all()
    # The engine hands text and binary over as view types, which pyarrow's grouping cannot take.
    plain = pa.schema([pa.field(f.name, _without_view(f.type), f.nullable) for f in keys_read.schema])
    return keys_read if plain == keys_read.schema else keys_read.cast(plain)


def quote_identifier(name: str) -> str:
    """A column name as a double-quoted identifier for delta-rs's SQL engine (QueryBuilder)."""
    return '"' + name.replace('"', '""') + '"'


def _without_view(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_binary_view(dtype):
        return pa.binary()
    return dtype
