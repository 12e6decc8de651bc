"""A streamed read spooled to local disk so that a MERGE into a partitioned table can be pruned.

A read larger than `DATALOADER_SMALL_READ_MB` is merged as a stream, and the partitions it touches are
only known once it has gone past. Spooled first — an uncompressed Arrow IPC file in the temp folder,
mapped back into memory, so the rows are paged from disk rather than held — its partition values and
keys can be read for the pruning term (partition_moves.py) and the merge still streams the same rows.
Up to `DATALOADER_SPOOL_MAX_MB` (default 2048; 0 turns spooling off): a longer stream goes on
unspooled, the batches spooled so far first, and the merge scans every partition as before.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

import pyarrow as pa

from pipes_workers.env_settings import whole_number

SPOOL_MAX_ENV = "DATALOADER_SPOOL_MAX_MB"
DEFAULT_SPOOL_MAX_MB = 2048


@dataclass(frozen=True)
class Spooled:
    """The stream's rows: `table` (memory-mapped) when it all fit in the spool, else None; `rows`
    streams them either way, once."""

    table: pa.Table | None
    rows: pa.RecordBatchReader


def spool_max_bytes() -> int:
    """`DATALOADER_SPOOL_MAX_MB` in bytes (0: never spool)."""
    return whole_number(SPOOL_MAX_ENV, DEFAULT_SPOOL_MAX_MB, unit="megabytes") << 20


@contextmanager
def spooled(stream: pa.RecordBatchReader, max_bytes: int) -> Iterator[Spooled]:
    """`stream` written to a temporary Arrow IPC file up to `max_bytes`; the file is removed when the
    block ends, so the merge must run inside it."""
    with tempfile.TemporaryDirectory(prefix="dataloader-spool-") as folder:
        path = os.path.join(folder, "rows.arrow")
        batches = iter(stream)
        size = 0
        overflow: list[pa.RecordBatch] = []
        with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, stream.schema) as writer:
            for batch in batches:
                if size + batch.nbytes > max_bytes:
                    overflow.append(batch)
                    break
                writer.write_batch(batch)
                size += batch.nbytes
        with pa.memory_map(path) as source:
            table = pa.ipc.open_file(source).read_all()
            if overflow:
                rest = chain(table.to_batches(), overflow, batches)
                yield Spooled(None, pa.RecordBatchReader.from_batches(stream.schema, rest))
            else:
                yield Spooled(table, pa.RecordBatchReader.from_batches(stream.schema, table.to_batches()))
