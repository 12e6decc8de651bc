"""How long a load keeps trying to record its outcome when the control database is unreachable.

The outcome of a load that ran (a Delta commit, or a failure) is written on a fresh connection,
retried with backoff (1, 2, 4, … s, at most 30 s apart) for DATALOADER_OUTCOME_RETRY_S seconds
(default 300): long enough for a control-database restart or failover. After that the row stays
In Progress for the run until its process has ended; then `local_runs.fail_dead_local_runs` (a
`dataloader load` run) or the reconcile pass (a Dagster run) fails it as `run_lost`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

OUTCOME_RETRY_ENV = "DATALOADER_OUTCOME_RETRY_S"
DEFAULT_OUTCOME_RETRY_S = 300.0
FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 30.0
# A connect that hangs (packets dropped, not refused) must not outlast the retry budget.
CONNECT_TIMEOUT_S = 10


class OutcomeNotRecorded(RuntimeError):
    """The outcome could not be written within the retry budget; the row is still In Progress."""


def outcome_retry_seconds() -> float:
    """DATALOADER_OUTCOME_RETRY_S (seconds, >= 0), else the default; a bad value names the variable."""
    raw = os.environ.get(OUTCOME_RETRY_ENV, "").strip()
    if not raw:
        return DEFAULT_OUTCOME_RETRY_S
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also refuses nan
        raise ValueError(f"{OUTCOME_RETRY_ENV} must be a number of seconds >= 0 (got {raw!r})")
    return seconds


def retry_pauses(patience_s: float, *, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
    """The pauses between tries: doubling from 1 s up to 30 s, until `patience_s` has passed since
    the first was asked for (the last one shortened to end there)."""
    deadline = clock() + patience_s
    pause = FIRST_PAUSE_S
    while (left := deadline - clock()) > 0:
        yield min(pause, left)
        pause = min(pause * 2, MAX_PAUSE_S)
