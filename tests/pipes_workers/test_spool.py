"""lake/spool.py: a stream spooled to a local Arrow file, mapped back; past its limit the rest goes
on unspooled, in order; a stream that fails while spooling raises its own error."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from pipes_workers.lake.spool import spooled

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def _batches(count: int, *, fail_after: int | None = None) -> Iterator[pa.RecordBatch]:
    for i in range(count):
        if fail_after is not None and i == fail_after:
            raise ConnectionResetError("the source went away")
        yield pa.record_batch([pa.array(range(i * 10, i * 10 + 10)), pa.array([f"n{i}"] * 10)], schema=SCHEMA)


def _reader(count: int, **kwargs: int) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(SCHEMA, _batches(count, **kwargs))


def test_a_stream_within_the_limit_is_mapped_back_whole() -> None:
    with spooled(_reader(3), 1 << 20) as spool:
        assert spool.table is not None and spool.table.num_rows == 30
        assert spool.table.column("id").to_pylist() == list(range(30))
        assert spool.rows.read_all().equals(spool.table)


def test_a_stream_past_the_limit_goes_on_unspooled_in_order() -> None:
    one_batch = next(_batches(1)).nbytes
    with spooled(_reader(4), one_batch + 1) as spool:
        assert spool.table is None
        assert spool.rows.read_all().column("id").to_pylist() == list(range(40))


def test_a_stream_that_fails_while_spooling_raises_its_own_error() -> None:
    with (
        pytest.raises(ConnectionResetError, match="the source went away"),
        spooled(_reader(4, fail_after=2), 1 << 20),
    ):
        pass
