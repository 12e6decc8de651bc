"""PostgreSQL values in their text form (pgoutput's, and `col::text`'s in the snapshot) as Arrow
arrays of the PostgreSQL reader's types (sources/postgres_types.py, docs/type_mapping.md).

Both the snapshot and the captured changes are converted here, in sessions set up like the reader's
(UTC, ISO dates, ISO 8601 intervals), so a cdc load stores the values a `full` load stores: numerics
and times go through the reader's own exact casts (`convert_array`), timestamptz text is UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dataloader_contract.errors import PermanentLoadError, UnsupportedTypeError
from pipes_workers.cdc.arrays import string_array, validity
from pipes_workers.sources.base import SourceColumn
from pipes_workers.sources.batches import convert_array
from pipes_workers.sources.postgres_batches import conform_batch
from pipes_workers.sources.postgres_types import SPATIAL

_BOOL_TEXT = string_array(["t", "f"])  # boolout's text


def refuse_unsupported(table: str, columns: Sequence[SourceColumn]) -> None:
    """UnsupportedTypeError for a column the text form cannot give a full load's value for (PostGIS)."""
    for column in columns:
        if column.source_type.split("(")[0] in SPATIAL or column.name.endswith("__srid"):
            raise UnsupportedTypeError(
                f"source table {table}: column {column.name!r} ({column.source_type}) cannot be captured by "
                "load_strategy cdc (spatial values); load the table with another strategy"
            )


def text_batch(texts: Sequence[Sequence[str | None]], schema: pa.Schema, table: str) -> pa.RecordBatch:
    """One batch of `schema` from per-column lists of text values (None = NULL)."""
    arrays = [
        text_array(values, f.type, column=f.name, table=table)
        for values, f in zip(texts, schema, strict=True)
    ]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    return conform_batch(batch, schema, [], table)  # the reader's range checks (infinity, 24:00:00)


def text_array(values: Sequence[str | None], target: pa.DataType, *, column: str, table: str) -> pa.Array:
    """One column's text values as `target`, exactly; a value that does not fit fails naming the column."""
    if pa.types.is_list(target):
        return _list_array(values, target, column=column, table=table)
    if pa.types.is_binary(target):
        return string_array([None if v is None else _bytea(v, column, table) for v in values], binary=True)
    text = string_array(values)
    if pa.types.is_string(target):
        return text
    if pa.types.is_boolean(target):
        bad = pc.and_(pc.is_valid(text), pc.invert(pc.is_in(text, value_set=_BOOL_TEXT)))
        if pc.any(bad).as_py():
            raise PermanentLoadError(
                f"source table {table}: column {column!r} holds a value that is not a boolean"
            )
        return pc.equal(text, _BOOL_TEXT[0])
    if pa.types.is_timestamp(target) and target.tz is not None:
        # The session's time zone is UTC: the text ends in +00 (seconds-precision zones never occur).
        text = pc.replace_substring_regex(text, r"\+00$", "")
        return convert_array(text, pa.timestamp(target.unit), column=column, table=table).cast(target)
    if pa.types.is_floating(target):
        text = pc.replace_substring(text, "Infinity", "inf")
    return convert_array(text, target, column=column, table=table)


def _bytea(text: str, column: str, table: str) -> bytes:
    if not text.startswith("\\x"):
        raise PermanentLoadError(
            f"source table {table}: column {column!r}: bytea text is not in hex form (set bytea_output = hex)"
        )
    return bytes.fromhex(text[2:])


def _list_array(values: Sequence[str | None], target: pa.DataType, *, column: str, table: str) -> pa.Array:
    offsets, elements, nulls = [0], [], []
    for value in values:
        nulls.append(value is None)
        items = [] if value is None else parse_array(value, column=column, table=table)
        elements.extend(items)
        offsets.append(len(elements))
    flat = text_array(elements, target.value_type, column=column, table=table)
    starts = pa.Array.from_buffers(
        pa.int32(), len(offsets), [None, pa.py_buffer(np.array(offsets, np.int32).tobytes())]
    )
    mask = validity([not n for n in nulls])
    return pa.ListArray.from_buffers(target, len(values), [mask, starts.buffers()[1]], children=[flat])


def parse_array(text: str, *, column: str, table: str) -> list[str | None]:
    """The elements of a one-dimensional PostgreSQL array literal (`{1,"a b",NULL}`) as text."""
    if not text.startswith("{") or not text.endswith("}") or text.startswith("{{"):
        raise PermanentLoadError(
            f"source table {table}: column {column!r} holds a multi-dimensional array (or one with bounds), "
            "which a list column cannot represent; cast it to text in a view"
        )
    body, items, at = text[1:-1], [], 0
    if not body:
        return []
    while at <= len(body):
        if at < len(body) and body[at] == '"':
            chars, at = [], at + 1
            while body[at] != '"':
                if body[at] == "\\":
                    at += 1
                chars.append(body[at])
                at += 1
            items.append("".join(chars))
            at += 2  # the closing quote and the comma
        else:
            end = body.find(",", at)
            end = len(body) if end < 0 else end
            raw = body[at:end]
            items.append(None if raw == "NULL" else raw)
            at = end + 1
    return items


def python_rows(rows: Sequence[dict[str, Any]], schema: pa.Schema, table: str) -> pa.Table:
    """Rows of {column: text or None} (a missing column is NULL) as a table of `schema`."""
    texts = [[row.get(f.name) for row in rows] for f in schema]
    return pa.Table.from_batches([text_batch(texts, schema, table)], schema=schema)
