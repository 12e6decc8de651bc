"""Arrow arrays built from their buffers, not with `pa.array` over Python objects: that makes pyarrow
import pandas to rule pandas objects out, 0.6 s of a load's start (seconds on a busy machine)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa


def string_array(values: Sequence[str | bytes | None], *, binary: bool = False) -> pa.Array:
    """A string (binary) array of `values`, built from buffers: `pa.array` over Python objects makes
    pyarrow import pandas (0.6 s of a load) to rule it out."""
    encoded = [b"" if v is None else v if isinstance(v, bytes) else v.encode() for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    buffers = [
        validity([v is not None for v in values]),
        pa.py_buffer(offsets.tobytes()),
        pa.py_buffer(b"".join(encoded)),
    ]
    wide = pa.Array.from_buffers(pa.large_binary() if binary else pa.large_string(), len(encoded), buffers)
    return wide.cast(pa.binary() if binary else pa.string())


def validity(valid: list[bool]) -> pa.Buffer | None:
    """An Arrow validity bitmap (None when every value is valid)."""
    return (
        None
        if all(valid)
        else pa.py_buffer(np.packbits(np.array(valid, dtype=bool), bitorder="little").tobytes())
    )


def timestamps(values: Sequence[datetime | None], dtype: pa.TimestampType) -> pa.Array:
    """A microsecond timestamp array of aware datetimes (None = NULL)."""
    micros = np.fromiter(
        (0 if v is None else round(v.timestamp() * 1_000_000) for v in values), np.int64, len(values)
    )
    buffers = [validity([v is not None for v in values]), pa.py_buffer(micros.tobytes())]
    return pa.Array.from_buffers(pa.timestamp("us", tz=dtype.tz), len(values), buffers).cast(dtype)
