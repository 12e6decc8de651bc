"""A source stream that counts what flows through it on its way to the Delta writer.

Bounded memory: batches are passed on one at a time. `is_empty()` peeks at most until the first
non-empty batch, which is then replayed; `collect()` gathers a small read whole, up to a byte limit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from pipes_workers.lake.append_claim import AppendClaim, ClaimGuard
from pipes_workers.lake.key_order import KeyOrder
from pipes_workers.strategies.faults import crash_point

PROGRESS_EVERY_S = 2.0


class TrackedStream:
    """Wraps a RecordBatchReader: rows, bytes, MAX and NULL count of one column, progress logs.

    Args:
        source: the reader's stream.
        track: a column whose MAX and NULL count are tracked (or None).
        log: progress sink ("read 262,144 rows").
        keys: primary key columns whose order is watched (`key_order.proven`: unique in the stream).
    """

    def __init__(
        self,
        source: pa.RecordBatchReader,
        *,
        track: str | None,
        log: Callable[[str], None],
        keys: tuple[str, ...] = (),
    ) -> None:
        self._source = source
        self._track = track
        self._log = log
        self._peeked: list[pa.RecordBatch] = []
        self._exhausted = False
        self.rows = 0
        self.bytes = 0
        self.max_value: Any = None
        self.null_rows = 0
        self.key_order = KeyOrder(keys)
        self.claim_guard: ClaimGuard | None = None

    @property
    def schema(self) -> pa.Schema:
        """The stream's Arrow schema."""
        return self._source.schema

    def is_empty(self) -> bool:
        """True when the stream holds no rows (reads ahead to the first non-empty batch)."""
        if self._peeked:
            return False
        for batch in self._source:
            self._peeked.append(batch)
            if batch.num_rows:
                return False
        self._exhausted = True
        return True

    def collect(self, max_bytes: int) -> pa.Table | None:
        """The whole stream as one table when it holds at most `max_bytes` of Arrow data; otherwise
        None, and the stream is closed (counters then cover only what was read)."""
        batches: list[pa.RecordBatch] = []
        size = 0
        reading = self._batches()
        for batch in reading:
            batches.append(batch)
            size += batch.nbytes
            if size > max_bytes:
                reading.close()
                self.close()
                return None
        return pa.Table.from_batches(batches, schema=self.schema)

    def close(self) -> None:
        """Stop reading and release the source's connection now."""
        self._peeked = []
        self._exhausted = True
        self._source.close()
        # RecordBatchReader.close() keeps the reader's Python iterator alive; dropping the last
        # reference is what finalises it, which stops the producer thread and closes its connection.
        self._source = pa.RecordBatchReader.from_batches(self._source.schema, iter(()))

    def guard(self, claim: AppendClaim) -> ClaimGuard:
        """Make the stream raise ClaimBroken, before its end reaches the writer, when its rows
        cannot carry `claim`; returns the guard (its `broken` says whether it did)."""
        self.claim_guard = ClaimGuard(claim, self.key_order)
        return self.claim_guard

    def reader(self) -> pa.RecordBatchReader:
        """A RecordBatchReader over the stream that updates the counters as it is consumed."""
        return pa.RecordBatchReader.from_batches(self.schema, self._batches())

    def _batches(self) -> Iterator[pa.RecordBatch]:
        last_log = time.monotonic()
        pending = self._peeked
        self._peeked = []
        source: Iterator[pa.RecordBatch] = iter(()) if self._exhausted else iter(self._source)
        for batch in _chain(pending, source):
            if not batch.num_rows:
                continue
            self._count(batch)
            if self.claim_guard is not None:
                self.claim_guard.observe(batch)
            yield batch
            crash_point("read")
            now = time.monotonic()
            if now - last_log >= PROGRESS_EVERY_S:
                self._log(f"read {self.rows:,} rows")
                last_log = now
        if self.claim_guard is not None:
            self.claim_guard.finish()
        self._log(f"read {self.rows:,} rows in total")

    def _count(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        self.bytes += batch.nbytes
        self.key_order.observe(batch)
        if self._track is None:
            return
        column = batch.column(self._track)
        self.null_rows += column.null_count
        if column.null_count < len(column):
            value = python_value(pc.max(column))
            if value is not None and (self.max_value is None or value > self.max_value):
                self.max_value = value


_EPOCH = datetime(1970, 1, 1)
_MICROS_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}
_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")


def python_value(scalar: pa.Scalar) -> Any:
    """`scalar.as_py()`, except that a timestamp (seconds to microseconds) is converted here:
    pyarrow's own conversion imports pandas (0.15 s) into the worker the first time it runs."""
    dtype = scalar.type
    if not pa.types.is_timestamp(dtype) or dtype.unit not in _MICROS_PER_UNIT or not scalar.is_valid:
        return scalar.as_py()
    naive = _EPOCH + timedelta(microseconds=scalar.value * _MICROS_PER_UNIT[dtype.unit])
    return naive if dtype.tz is None else naive.replace(tzinfo=UTC).astimezone(_zone(dtype.tz))


def _zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z", "+00:00"):
        return UTC
    offset = _OFFSET.match(name)
    if offset:
        sign = -1 if offset.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(offset.group(2)), minutes=int(offset.group(3))))
    return ZoneInfo(name)


def _chain(first: list[pa.RecordBatch], rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield from first
    yield from rest
