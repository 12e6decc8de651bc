"""StreamingReader: the bookkeeping every reader shares — its open streams, closing them, and turning a
driver's batch iterator into a bounded, producer-threaded RecordBatchReader with errors mapped."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

from pipes_workers.errors import LoadError
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import SourceReader
from pipes_workers.sources.batches import BoundedStream

# Interpreter-level exits pass through; anything else a driver raises (connectorx reports some
# failures as a Rust panic, a BaseException) becomes a LoadError naming the table.
_PASS_THROUGH = (KeyboardInterrupt, SystemExit, GeneratorExit)


class StreamingReader(SourceReader):
    """A reader whose `read` streams through a BoundedStream; `close()` stops the streams still open."""

    def __init__(self, params: ConnectionParams, *, queue_depth: int = 3) -> None:
        self.params = params
        self.queue_depth = queue_depth
        self._streams: set[BoundedStream] = set()
        self._lock = threading.Lock()

    @property
    def _secrets(self) -> tuple[str, ...]:
        """Values to scrub from driver messages (computed on use, never stored in the reader's state)."""
        return self.params.secret_values()

    def _stream(
        self,
        schema: pa.Schema,
        batches: Callable[[], Iterator[pa.RecordBatch]],
        *,
        read_error: Callable[[BaseException], LoadError],
        release: Callable[[], None],
    ) -> pa.RecordBatchReader:
        """Run `batches()` in a producer thread and hand its batches out as a RecordBatchReader.

        Args:
            schema: the schema every batch has.
            batches: opens the driver's iteration (called in the producer thread).
            read_error: maps a driver exception to the LoadError to raise in the consumer.
            release: frees the driver's cursor/connection once the stream ends or is closed.
        """

        def produce() -> Iterator[pa.RecordBatch]:
            try:
                yield from batches()
            except LoadError:
                raise
            except BaseException as exc:
                if isinstance(exc, _PASS_THROUGH):
                    raise
                raise read_error(exc) from None

        def on_close() -> None:
            try:
                release()
            finally:
                with self._lock:
                    self._streams.discard(stream)

        stream = BoundedStream(schema, produce, on_close=on_close, depth=self.queue_depth)
        with self._lock:
            self._streams.add(stream)
        return stream.reader()

    def _close_streams(self) -> None:
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()
