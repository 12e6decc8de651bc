"""A row's fingerprint over its data columns: what tells a changed row from an unchanged re-read.

Each value becomes text (Arrow's cast; Python's `repr` for types Arrow cannot cast to text, such as
lists or non-UTF-8 bytes) prefixed with its column's name and its length (`name=3:abc`, so
`"a|b","c"` and `"a","b|c"` differ); the tokens — in column-name order, so a reordered source does
not look changed — are joined, NULLs left out (so a column added to the source, NULL in every old
row, changes no fingerprint), and hashed with BLAKE2b (16 bytes, hex).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

SEPARATOR = "\x1f"
# Arrow scalars are built per call: pa.scalar at import time pulls in pandas (0.1 s of every load).


def row_hashes(batch: pa.RecordBatch | pa.Table, columns: Sequence[str]) -> pa.Array:
    """The hex BLAKE2b-128 fingerprint of each row of `batch` over `columns` (in name order).

    Example:
        >>> row_hashes(pa.table({"id": [1], "v": ["a"]}), ["id", "v"]).to_pylist()[0] != ""
        True
    """
    if batch.num_rows == 0:
        return pa.array([], pa.string())
    tokens = [_tokens(name, batch.column(name)) for name in sorted(columns)]
    skip_nulls = pc.JoinOptions(null_handling="skip")
    joined = pc.binary_join_element_wise(
        *tokens, pa.scalar(SEPARATOR, pa.large_string()), options=skip_nulls
    ).to_pylist()
    digests = [hashlib.blake2b((text or "").encode(), digest_size=16).hexdigest() for text in joined]
    return pa.array(digests, pa.string())


def _tokens(name: str, column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """`<name>=<length>:<text>` for each value, NULL for NULL."""
    text = _as_text(column)
    lengths = pc.cast(pc.utf8_length(text), pa.large_string())
    prefix = pa.scalar(f"{name}=", pa.large_string())
    colon, empty = pa.scalar(":", pa.large_string()), pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(prefix, lengths, colon, text, empty)


def _as_text(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    try:
        return pc.cast(column, pa.large_string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else repr(v) for v in column.to_pylist()], pa.large_string())
