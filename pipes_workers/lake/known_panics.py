"""Keep one known, harmless Rust panic of a failed Delta write off stderr; everything else passes.

When writing a data file fails at its last step (a full disk, a lost object store), delta-rs
(≥ 1.6.4, `upload_parquet_file`) aborts the file's upload after the failed finish, and object_store
0.13's `BufWriter::abort` panics "Already shut down" because that writer had already begun its
shutdown (upstream: apache/arrow-rs-object-store issue 810). The panic is caught by tokio inside
delta-rs and the write still fails with its real error (`(os error 28)`, which write_failures.py
classifies), but Rust's panic hook has printed it to stderr on the way — a backtrace in the
worker's output that reads like a crash. No call order on our side avoids it (the abort runs inside
delta-rs's own upload task), and Rust's panic hook cannot be replaced from Python.

So, for the duration of a Delta write, file descriptor 2 is routed through a pipe whose reader
forwards every line to the real stderr as it comes, except that one panic's block (its header
naming object_store's `buffered.rs`, the "Already shut down" line and the backtrace lines after
it), which goes to the `pipes_workers.lake` log at debug level instead. Any other panic, Rust or
Python output passes unchanged. Nested and concurrent writes share one pipe (counted); the last
one out restores fd 2 and waits until the pipe is drained. What a process writes to stderr just
before it dies mid-write (a Rust abort) may be lost with the pipe's reader; Python's faulthandler,
when enabled, writes its dump to the real stderr meanwhile.
"""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

LOG = logging.getLogger("pipes_workers.lake")

# "thread 'tokio-rt-worker' (15668) panicked at …/object_store-0.13.2/src/buffered.rs:369:41:"
_HEADER = re.compile(
    rb"^thread '[^']*'(?: \(\d+\))? panicked at \S*/object_store-[^/]+/src/buffered\.rs:\d+:\d+:$"
)
_MESSAGE = b"Already shut down"
# What Rust's default hook prints after the message: "stack backtrace:", numbered frames and their
# "at file:line" lines, and "note: …backtrace…" hints.
_TRAILER = re.compile(rb"^(?:stack backtrace:|\s+\d+:\s.*|\s+at\s.*|note: .*backtrace.*)$")

_lock = threading.Lock()
_users = 0
_route: _PanicFilter | None = None
_DRAIN_S = 5.0


@contextlib.contextmanager
def known_panics_hidden() -> Iterator[None]:
    """Route fd 2 through the filter while the block runs (see the module docstring)."""
    _enter()
    try:
        yield
    finally:
        _leave()


def _enter() -> None:
    global _users, _route
    with _lock:
        if _users == 0:
            _route = _PanicFilter.install()
        _users += 1


def _leave() -> None:
    global _users, _route
    with _lock:
        _users -= 1
        if _users == 0 and _route is not None:
            _route.remove()
            _route = None


class _PanicFilter:
    """A pipe standing in for fd 2, and the thread that copies it to the real stderr, filtered."""

    def __init__(self, real_stderr: int, read_end: int) -> None:
        self.real_stderr = real_stderr
        self.read_end = read_end
        self.held: list[bytes] = []  # a blank line and/or a header, waiting to see what follows
        self.in_trailer = False  # the held lines are the known panic; its backtrace lines follow
        self.hidden: list[str] = []  # panics kept off stderr, logged by remove() (not by the
        # reader: a log handler writing to stderr would write into the pipe only it drains)
        self.thread = threading.Thread(target=self._copy, name="dataloader-stderr-filter", daemon=True)

    @classmethod
    def install(cls) -> _PanicFilter | None:
        """The filter in place of fd 2; None when the process has no fd 2 (nothing to keep clean)."""
        _flush_python_stderr()
        try:
            real_stderr = os.dup(2)
        except OSError:
            return None
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)  # fd 2 is now the pipe's only writer: restoring it closes the pipe
        if faulthandler.is_enabled():  # a crash's dump must not wait in a pipe its reader dies with
            faulthandler.enable(file=real_stderr, all_threads=True)
        route = cls(real_stderr, read_end)
        route.thread.start()
        return route

    def remove(self) -> None:
        _flush_python_stderr()
        os.dup2(self.real_stderr, 2)  # closes the pipe's write end: the reader drains it, sees EOF
        if faulthandler.is_enabled():
            faulthandler.enable(file=2, all_threads=True)
        # A child started during the write holds the pipe open until it exits; the reader keeps
        # forwarding its output until then and closes the descriptors itself.
        self.thread.join(timeout=_DRAIN_S)
        for text in self.hidden:
            LOG.debug("object_store panicked after a failed Delta write (kept off stderr):\n%s", text)

    def _copy(self) -> None:
        pending = b""
        try:
            while chunk := os.read(self.read_end, 65536):
                lines = (pending + chunk).split(b"\n")
                pending = lines.pop()
                for line in lines:
                    self._line(line)
            self._release()
            self._write(pending)
        finally:
            os.close(self.read_end)
            os.close(self.real_stderr)

    def _line(self, line: bytes) -> None:
        if self.in_trailer:
            if _TRAILER.match(line):
                self.held.append(line)
                return
            self._release()
        if self.held and _HEADER.match(self.held[-1]) and line == _MESSAGE:
            self.held.append(line)
            self.in_trailer = True
        elif _HEADER.match(line) and self.held == [b""]:
            self.held.append(line)
        elif line == b"" or _HEADER.match(line):
            self._release()
            self.held = [line]
        else:
            self._release()
            self._write(line + b"\n")

    def _release(self) -> None:
        """Settle the held lines: the known panic is kept for the log, anything else is printed."""
        if self.in_trailer:
            self.hidden.append(b"\n".join(line for line in self.held if line).decode(errors="replace"))
        else:
            self._write(b"".join(line + b"\n" for line in self.held))
        self.held = []
        self.in_trailer = False

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.real_stderr, view) :]


def _flush_python_stderr() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
