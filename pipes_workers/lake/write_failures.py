"""Why a Delta write failed, decided by exception type and errno — never by words in a message.

delta-rs consumes the source stream in Rust: an exception the stream raises (a source connection
lost mid-read, a value that does not fit) comes back as delta-rs's own error, with the Python
traceback folded into its text. `WatchedRows` keeps the stream's own exception as it passes, so the
write's failure is that exception — a TransientLoadError with the source's SQLSTATE or errno — and
not a schema conflict guessed from the words of a wrapped traceback. Failures of the write itself
are classified by their type (SchemaMismatchError, CommitFailedError, …) and, for I/O, by the
errno delta-rs reports (`(os error 28)` is Rust's fixed rendering of an `io::Error`'s errno):
a full disk is transient, a read-only or forbidden lake is a configuration error.
"""

from __future__ import annotations

import errno
import logging
import re
import time
import traceback
from collections.abc import Iterator

import pyarrow as pa
from deltalake.exceptions import CommitFailedError, DeltaError, DeltaProtocolError, SchemaMismatchError

from dataloader_contract.errors import (
    ConfigurationError,
    LoadError,
    PermanentLoadError,
    SchemaConflictError,
    TransientLoadError,
)
from pipes_workers.sources.failures import first_line, scrub_lines
from pipes_workers.storage import looks_like_storage_error, storage_error

LOG = logging.getLogger("pipes_workers.lake")
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")

# errno -> (kind of LoadError, what it means for the lake). A full disk frees up (vacuum, other
# jobs, a bigger volume), so a retry may succeed; a read-only or forbidden lake needs a person.
_LAKE_ERRNOS: dict[int, tuple[type[LoadError], str]] = {
    errno.ENOSPC: (TransientLoadError, "the lake's disk is full; free space or grow the volume"),
    errno.EDQUOT: (TransientLoadError, "the lake's disk quota is used up; free space or raise the quota"),
    errno.EROFS: (ConfigurationError, "the lake is on a read-only file system; mount it read-write"),
    errno.EACCES: (
        ConfigurationError,
        "the worker may not write to the lake; fix the directory's owner or mode",
    ),
    errno.EPERM: (
        ConfigurationError,
        "the worker may not write to the lake; fix the directory's owner or mode",
    ),
    errno.ENAMETOOLONG: (
        ConfigurationError,
        "a file name under the lake is too long; shorten destination_table",
    ),
}


class WatchedRows:
    """Rows for a Delta write, wrapped so that what the stream raises is kept (`error`) as it passes.

    A table held in memory cannot fail while it is written and is passed on as it is.
    """

    def __init__(self, data: pa.RecordBatchReader | pa.Table) -> None:
        self.error: BaseException | None = None
        self.started = time.time()  # files of this write are no older (lake/leftovers.py)
        self.rows: pa.RecordBatchReader | pa.Table = (
            data
            if isinstance(data, pa.Table)
            else pa.RecordBatchReader.from_batches(data.schema, self._pass(data))
        )

    def _pass(self, data: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        try:
            yield from data
        except GeneratorExit:  # the writer stopped reading (its own failure): nothing to keep
            raise
        except BaseException as exc:
            self.error = exc
            raise


def write_failure(
    exc: BaseException, watched: WatchedRows | None, uri: str, storage_options: dict[str, str] | None = None
) -> BaseException:
    """What to raise for a failed Delta write: the stream's own exception when it raised one (a
    LoadError from the reader, ClaimBroken, KeyboardInterrupt…, an Arrow cast error as a schema
    conflict), else `exc` classified by its type and errno. Returns `exc` itself when it is none of
    Delta's, an OS or a stream error (a bug, reported as one)."""
    stream_error = watched.error if watched is not None else None
    if stream_error is not None:
        if isinstance(stream_error, pa.ArrowInvalid | pa.ArrowTypeError | pa.ArrowNotImplementedError):
            return SchemaConflictError(
                f"{uri}: the source rows do not fit the Delta table: {first_line(str(stream_error))}"
            )
        return stream_error
    if isinstance(exc, SchemaMismatchError):
        return SchemaConflictError(
            f"{uri}: the source schema does not fit the Delta table: {first_line(str(exc))}"
        )
    if isinstance(exc, CommitFailedError):
        return TransientLoadError(
            f"{uri}: the Delta commit conflicted with another writer: {first_line(str(exc))}",
            code="commit_conflict",
        )
    os_errno = exc.errno if isinstance(exc, OSError) and exc.errno else _rust_errno(exc)
    if os_errno is not None and os_errno in _LAKE_ERRNOS:
        return lake_os_error(os_errno, uri)
    if isinstance(exc, OSError | DeltaError) and looks_like_storage_error(exc):
        return storage_error(exc, uri, storage_options)
    if os_errno is not None:
        name = errno.errorcode.get(os_errno, str(os_errno))
        return TransientLoadError(f"{uri}: writing the lake failed ({name}, errno {os_errno})", code=name)
    if isinstance(exc, DeltaProtocolError):
        return PermanentLoadError(f"{uri}: the Delta table needs a newer protocol: {first_line(str(exc))}")
    if isinstance(exc, DeltaError):
        return PermanentLoadError(f"{uri}: Delta write failed: {first_line(str(exc))}")
    return exc


def lake_os_error(os_errno: int, uri: str) -> LoadError:
    """The LoadError for an OS error `os_errno` while writing the table at `uri` (code: the errno's name)."""
    name = errno.errorcode.get(os_errno, str(os_errno))
    cls, meaning = _LAKE_ERRNOS.get(os_errno, (TransientLoadError, "writing the lake failed"))
    return cls(f"{uri}: {meaning} ({name}, errno {os_errno})", code=name)


def _rust_errno(exc: BaseException) -> int | None:
    """The errno of the innermost `io::Error` delta-rs reports (Rust renders it `(os error N)`)."""
    found = _RUST_OS_ERROR.findall(str(exc))
    return int(found[-1]) if found else None


def log_failure(failure: BaseException, exc: BaseException) -> None:
    """Log at debug level what a write raised and, when it differs, what is reported (with their
    tracebacks, URLs and passwords scrubbed): the report itself is one line."""
    if not LOG.isEnabledFor(logging.DEBUG):
        return
    parts = ["".join(traceback.format_exception(exc))]
    if failure is not exc:
        parts.append("".join(traceback.format_exception(failure)))
    LOG.debug("Delta write failed: %s\n%s", first_line(str(failure)), scrub_lines("\n".join(parts)))
