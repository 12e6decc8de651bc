"""Record-batch plumbing shared by readers: exact per-column casts and a bounded producer thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dataloader_contract.errors import LoadError, PermanentLoadError

# Text a decimal cast refuses as not finite. Kept as text and turned into an array only on the
# error path: `pa.array` over Python objects makes pyarrow import pandas (0.15 s) to rule it out.
_NON_FINITE = ("NaN", "Infinity", "-Infinity", "inf", "-inf", "nan")


def convert_array(array: pa.Array, target: pa.DataType, *, column: str, table: str) -> pa.Array:
    """Cast one column to its declared type, exactly; a value that does not fit fails naming the column."""
    if array.type == target:
        return array
    if isinstance(array.type, pa.BaseExtensionType):  # e.g. the driver's opaque numeric: text storage
        array = array.storage
        if array.type == target:
            return array
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), target)
    if pa.types.is_time(target) and pa.types.is_string(array.type):
        return _time_from_text(array, target, column=column, table=table)
    try:
        return array.cast(target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _cast_error(array, target, column=column, table=table, exc=exc) from None


Convert = Callable[[pa.Array, pa.Field, str], pa.Array]


def _convert_field(array: pa.Array, field: pa.Field, table: str) -> pa.Array:
    return convert_array(array, field.type, column=field.name, table=table)


def cast_batch(
    batch: pa.RecordBatch, target: pa.Schema, table: str, convert: Convert = _convert_field
) -> pa.RecordBatch:
    """`batch` with every column converted to `target`'s type (by position), exactly; `convert(array,
    field, table)` lets a reader add its own checks."""
    arrays = [convert(batch.column(i), field, table) for i, field in enumerate(target)]
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def _time_from_text(array: pa.Array, target: pa.DataType, *, column: str, table: str) -> pa.Array:
    """'HH:MM:SS[.ffffff]' text → time; anything outside a day (e.g. MySQL's '-12:00:00') fails."""
    try:
        stamps = pc.binary_join_element_wise("1970-01-01 ", array, "").cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        raise PermanentLoadError(
            f"source table {table}: column {column!r} holds a time outside 00:00:00–23:59:59.999999 "
            "(or not a time), which a time-of-day type cannot represent; cast it in a view"
        ) from None
    return stamps.cast(target)


def python_column(values: list[Any], field: pa.Field, *, table: str) -> pa.Array:
    """An Arrow array of `field.type` from Python values (driver rows); text is parsed for
    decimal/temporal targets. A value of the wrong kind fails naming the column."""
    target = field.type
    try:
        if pa.types.is_boolean(target):
            if any(v not in (None, 0, 1) for v in values):
                raise PermanentLoadError(
                    f"source table {table}: column {field.name!r} is declared boolean but holds values other than 0/1"
                )
            return pa.array([None if v is None else bool(v) for v in values], pa.bool_())
        if (pa.types.is_decimal(target) or pa.types.is_temporal(target)) and any(
            isinstance(v, str) for v in values
        ):
            text = pa.array([None if v is None else str(v) for v in values], pa.string())
            return convert_array(text, target, column=field.name, table=table)
        if pa.types.is_string(target):
            values = [v if v is None or isinstance(v, str) else _as_text(v) for v in values]
        return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise PermanentLoadError(
            f"source table {table}: column {field.name!r} holds a value that is not {target}: {exc}"
        ) from None


def _as_text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes | bytearray) else str(value)


def _cast_error(
    array: pa.Array, target: pa.DataType, *, column: str, table: str, exc: Exception
) -> LoadError:
    if pa.types.is_decimal(target) and pa.types.is_string(array.type):
        if pc.any(pc.is_in(array, value_set=pa.array(_NON_FINITE))).as_py():
            return PermanentLoadError(
                f"source table {table}: column {column!r} holds NaN or Infinity, which {target} cannot represent"
            )
        return PermanentLoadError(
            f"source table {table}: column {column!r} holds a value that does not fit {target} exactly "
            f"(too many digits or decimals); cast it in a view ({exc})"
        )
    return PermanentLoadError(
        f"source table {table}: column {column!r}: cannot convert {array.type} to {target}: {exc}"
    )


class _End:
    pass


_END = _End()


class BoundedStream:
    """Runs a batch iterator in a thread, handing batches over through a bounded queue.

    The producer (driver decoding + casts) overlaps with the consumer (e.g. the Delta writer). Memory
    stays at most `depth` batches ahead. `close()` stops the producer and calls `on_close`.
    """

    def __init__(
        self,
        schema: pa.Schema,
        produce: Callable[[], Iterator[pa.RecordBatch]],
        *,
        on_close: Callable[[], None],
        depth: int = 3,
    ) -> None:
        self.schema = schema
        self._produce = produce
        self._on_close = on_close
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dataloader-source-reader", daemon=True)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        iterator = None
        try:
            iterator = self._produce()
            for batch in iterator:
                if not self._put(batch):
                    break
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put(exc)
        finally:
            close = getattr(iterator, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                self._finish()

    def _finish(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._on_close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield batches as the producer delivers them; re-raise its error."""
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            self.close()

    def close(self) -> None:
        """Stop the producer (if still running) and wait for it to release its resources."""
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=30)
        elif not self._thread.is_alive() and self._thread.ident is None:
            self._finish()  # never started

    def reader(self) -> pa.RecordBatchReader:
        """Start the producer; a RecordBatchReader over this stream."""
        self._thread.start()
        return pa.RecordBatchReader.from_batches(self.schema, self.batches())
