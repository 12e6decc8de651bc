"""Retry analysis: decide from a failure's structured kind and code, never from its message text.

The worker reports every load failure with a kind (transient | permanent | configuration) and the
source's code (SQLSTATE, driver errno). Failures that never pass through the worker — a run killed,
a run worker lost, a queue timeout — are recorded by the orchestrator with kind `transient` and one
of the codes below. Anything without a kind (a failure written by hand, or from before kinds were
recorded) goes to manual review: retrying an error nobody classified only hides it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Verdict = Literal["transient", "permanent", "unknown"]

# Codes the orchestrator records for failures outside the worker, with what they mean.
INFRASTRUCTURE_CODES: dict[str, str] = {
    "worker_died": "the worker process ended before it reported a result",
    "run_failed": "the Dagster run failed before the load could record its outcome",
    "run_cancelled": "the Dagster run was cancelled",
    "run_interrupted": "the run was interrupted (Ctrl-C, SIGTERM, a terminated step)",
    "run_lost": "the run that held the load no longer exists or ended without recording",
    "queued_run_lost": "the queued run is gone or finished without starting the load",
    "queued_too_long": "queued longer than DATALOADER_LONGQUEUED_THRESHOLD_S without starting",
    "running_too_long": "In Progress longer than DATALOADER_LONGRUNNING_THRESHOLD_S; run terminated",
    "interrupted": "`dataloader load` was interrupted",
}


@dataclass(frozen=True)
class Classification:
    """The verdict for one failure and why."""

    verdict: Verdict
    reason: str

    @property
    def retry(self) -> bool:
        return self.verdict == "transient"


def classify(kind: str | None, code: str | None) -> Classification:
    """Transient -> retry; permanent or configuration -> manual review; no kind -> manual review."""
    detail = INFRASTRUCTURE_CODES.get(code or "") or (f"code {code}" if code else "no code")
    if kind == "transient":
        return Classification("transient", f"transient error ({detail})")
    if kind == "configuration":
        return Classification("permanent", f"configuration error ({detail}): fix the control row or source")
    if kind == "permanent":
        return Classification("permanent", f"permanent error ({detail})")
    return Classification("unknown", "no error kind recorded for this failure")


def backoff(retry_count: int, *, base_s: int = 60, cap_s: int = 3600) -> timedelta:
    """Exponential backoff before retry number `retry_count + 1`: base * 2**retry_count, capped."""
    exponent = max(0, min(retry_count, 30))
    return timedelta(seconds=min(cap_s, base_s * 2**exponent))
