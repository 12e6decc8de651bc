"""A row's fingerprint over its data columns: what tells a changed row from an unchanged re-read.

Each value becomes text (Arrow's cast; Python's `repr` for types Arrow cannot cast to text, such as
lists or non-UTF-8 bytes), is prefixed with its length (so `"a|b","c"` and `"a","b|c"` differ), a
NULL becomes a marker no value can produce, and the columns — in name order, so a reordered
source does not look changed — are joined and hashed with BLAKE2b (16 bytes, hex).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

NULL_TOKEN = pa.scalar("\x00", pa.large_string())
SEPARATOR = pa.scalar("\x1f", pa.large_string())
COLON = pa.scalar(":", pa.large_string())


def row_hashes(batch: pa.RecordBatch | pa.Table, columns: Sequence[str]) -> pa.Array:
    """The hex BLAKE2b-128 fingerprint of each row of `batch` over `columns` (in name order).

    Example:
        >>> row_hashes(pa.table({"id": [1], "v": ["a"]}), ["id", "v"]).to_pylist()[0] != ""
        True
    """
    if batch.num_rows == 0:
        return pa.array([], pa.string())
    tokens = [_tokens(batch.column(name)) for name in sorted(columns)]
    joined = pc.binary_join_element_wise(*tokens, SEPARATOR) if tokens else pa.nulls(batch.num_rows)
    digests = [
        hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
        for text in (joined.to_pylist() if tokens else [""] * batch.num_rows)
    ]
    return pa.array(digests, pa.string())


def _tokens(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`<length>:<text>` for each value, NULL_TOKEN for NULL."""
    text = _as_text(column)
    lengths = pc.cast(pc.utf8_length(text), pa.large_string())
    token = pc.binary_join_element_wise(lengths, text, COLON)
    return pc.fill_null(token, NULL_TOKEN)


def _as_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    try:
        return pc.cast(column, pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else repr(v) for v in column.to_pylist()], pa.large_string())
