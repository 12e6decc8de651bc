"""Test-only fault injection: `DATALOADER_TEST_CRASH_AFTER` kills the worker with SIGKILL at a point.

Points: `read` (after the first source batch was handed to the writer, before any commit),
`commit` (after the load's Delta commit, before the result reaches the orchestrator / control row),
`chunk:N` (after chunk N of a chunked_backfill was committed, 1-based), `reconcile` (a delete
reconciliation found the vanished keys, before its commit), `widen` (a schema_policy widening
rewrote the table, before the load read anything); cdc: `snapshot` (the slot exists, the
snapshot is not read), `read` (also: the changes were read, before the commit), `acknowledge`
(after the commit, before the position is acknowledged to the source). Unset in production: the
check is one environment lookup. Tests use it to prove that a `kill -9` at any of these moments
loses and duplicates no rows.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "DATALOADER_TEST_CRASH_AFTER"


def crash_point(point: str) -> None:
    """SIGKILL this process when DATALOADER_TEST_CRASH_AFTER equals `point`."""
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)
