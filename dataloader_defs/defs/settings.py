"""Sensor intervals and thresholds, read from the environment (DESIGN §4) so tests run on seconds."""

from __future__ import annotations

import os
from datetime import timedelta

# name -> default, in seconds (or tables, for the batch size).
DEFAULTS: dict[str, int] = {
    "DATALOADER_MASTER_INTERVAL_S": 60,
    "DATALOADER_MASTER_BATCH": 10,
    "DATALOADER_RUN_BATCH": 12,
    "DATALOADER_RUN_CONCURRENCY": 4,  # a count: tables of one run loading at once
    "DATALOADER_REFRESH_INTERVAL_S": 30,
    "DATALOADER_LONGQUEUED_INTERVAL_S": 600,
    "DATALOADER_LONGQUEUED_THRESHOLD_S": 3600,
    "DATALOADER_LONGRUNNING_INTERVAL_S": 600,
    "DATALOADER_LONGRUNNING_THRESHOLD_S": 10800,
    "DATALOADER_FAILED_INTERVAL_S": 900,
    "DATALOADER_LANDING_INTERVAL_S": 1800,
    "DATALOADER_LANDING_BATCH": 500,
    "DATALOADER_RECONCILE_INTERVAL_S": 300,
    "DATALOADER_RECONCILE_QUEUED_GRACE_S": 120,  # age before the reconcile pass looks at a Queued row
    "DATALOADER_RECONCILE_QUEUED_MAX_WAIT_S": 1800,  # then: failed once no run will come, or after this
    "DATALOADER_STATE_INTERVAL_S": 60,
    # a count: attempts in a row whose run ended before the load started that go back to the queue
    # without using a retry; the next one fails (transient) and the retry analysis takes over
    "DATALOADER_UNSTARTED_REQUEUES": 5,
    "DATALOADER_RETRY_BASE_S": 60,
    "DATALOADER_RETRY_CAP_S": 3600,
    "DATALOADER_MAINTENANCE_INTERVAL_S": 3600,
    "DATALOADER_MAINTENANCE_AFTER_LOADS": 30,  # a count, not seconds: successful loads since the last pass
    "DATALOADER_CIRCUIT_INTERVAL_S": 60,
}


def env_int(name: str) -> int:
    """The integer setting `name` from the environment, or its default; a clear error when malformed."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return DEFAULTS[name]
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < 0:
        raise ValueError(f"{name}={value} must not be negative")
    return value


def env_seconds(name: str) -> timedelta:
    """The setting `name` as a timedelta."""
    return timedelta(seconds=env_int(name))


def interval(name: str) -> int:
    """A sensor's minimum interval in seconds (at least 1; Dagster's daemon ticks every ~5 s anyway)."""
    return max(1, env_int(name))
