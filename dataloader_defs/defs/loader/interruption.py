"""One interruption of a run, one record: the first sign of it any thread of the run sees names it,
and every table it stops is recorded with that same kind, code and message.

A Ctrl-C reaches the run's main thread, its fork server and its workers at once; each table's
thread then sees whichever broke first for it — the worker's exit (`External execution process
failed with code 1`), the fork server gone (`EOFError`, `ConnectionRefusedError`). Without a shared
record those became three different failures for one event.
"""

from __future__ import annotations

import threading

from dataloader_contract.result import LoadFailure

# How long a table whose worker ended without a result waits for the run to say it is being
# interrupted: the signal that stopped the worker reaches the main thread within milliseconds, and
# a worker that died on its own is recorded as `worker_died` after this wait.
SETTLE_S = 5.0


class RunInterruption:
    """The first cause of a run's interruption, shared by the threads of the run (first one wins)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cause: str | None = None
        self._noted = threading.Event()

    def note(self, cause: str) -> str:
        """Record `cause` unless a cause is known already; returns the cause that stands."""
        with self._lock:
            if self._cause is None:
                self._cause = cause
                self._noted.set()
            return self._cause

    def cause(self, wait_s: float = 0.0) -> str | None:
        """The cause, waiting up to `wait_s` for one; None when the run is not being interrupted."""
        self._noted.wait(wait_s)
        with self._lock:
            return self._cause

    def failure(self, control_key: str) -> LoadFailure:
        """The one record of this interruption for `control_key` (transient: the retry loads it)."""
        return LoadFailure(
            kind="transient",
            code="run_interrupted",
            message=f"{control_key}: run interrupted ({self.cause() or 'unknown cause'})",
        )
