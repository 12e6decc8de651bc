"""Whether a run for a Queued attempt may still be created: read from the master sensor's tick records.

The master sensor queues rows (Queued, a history row) *inside* its evaluation; Dagster's sensor
daemon creates the runs afterwards. In between it writes the tick record twice: STARTED when the
tick begins (before the evaluation), then, once the evaluation returned, the run requests with a
run id reserved for each — still STARTED — and only after every run exists, SUCCESS. A daemon that
dies part-way leaves the tick STARTED with runs unsubmitted and resumes it on its next evaluation; a
tick that FAILED with runs unsubmitted is retried once (MAX_FAILURE_RESUBMISSION_RETRIES) as the
newest tick. Under load this takes minutes (every run creation asks the code server for an
execution plan), so any fixed grace fails attempts whose runs are merely late.

So a Queued attempt that no run carries yet is lost only when the daemon is done with it:
- a tick requested its run and that tick is finished, and is not a FAILURE the daemon will retry; or
- no tick requested its run, and no master-sensor tick is still STARTED that began before the
  attempt was queued (plus CLOCK_MARGIN, for clocks of different hosts): the evaluation that queued
  it ended without a run request for it (it raised, or the daemon gave up waiting for it).
Ticks are read before runs, so a tick seen finished has created all its runs by then. A caller still
fails an attempt after a hard upper bound (a tick STARTED for that long belongs to a dead daemon).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from dagster import DagsterInstance
from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickStatus

from dataloader_defs.defs.run_tags import attempt_of_tag

MASTER_SENSOR_NAME = "master_sensor"
CLOCK_MARGIN = timedelta(seconds=60)


def master_ticks(
    instance: DagsterInstance, *, since: float, repository_name: str | None
) -> list[InstigatorTick]:
    """The master sensor's ticks that started after `since` (epoch seconds), newest first."""
    states = [
        state
        for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR)
        if state.instigator_name == MASTER_SENSOR_NAME
        and (repository_name is None or state.origin.repository_origin.repository_name == repository_name)
    ]
    ticks: dict[int, InstigatorTick] = {}
    for state in states:
        for tick in instance.get_ticks(state.instigator_origin_id, state.selector_id, after=since):
            ticks[tick.tick_id] = tick
    return sorted(ticks.values(), key=lambda tick: tick.timestamp, reverse=True)


def _max_failure_resubmissions() -> int:
    # Imported when needed: dagster._daemon costs the code location's every load 0.3-0.5 s.
    from dagster._daemon.sensor import MAX_FAILURE_RESUBMISSION_RETRIES

    return MAX_FAILURE_RESUBMISSION_RETRIES


def _requested_attempts(run_requests: Sequence) -> set[int]:
    return {
        history_id
        for request in run_requests
        for tag in request.tags
        if (history_id := attempt_of_tag(tag)) is not None
    }


def run_still_coming(ticks: Sequence[InstigatorTick], history_id: int, queued_at: float) -> str | None:
    """Why a run for attempt `history_id` (queued at `queued_at`, epoch seconds) may still be created,
    or None when the sensor daemon is done with it. `ticks`: master_ticks(), newest first."""
    requesting = [t for t in ticks if history_id in _requested_attempts(t.run_requests or [])]
    for tick in requesting:
        if tick.status == TickStatus.STARTED:
            return f"master_sensor tick {tick.tick_id} is still submitting its runs"
        unsubmitted = {
            h for _, request in tick.unsubmitted_run_ids_with_requests for h in _requested_attempts([request])
        }
        if (
            tick.status == TickStatus.FAILURE
            and tick is ticks[0]
            and tick.tick_data.failure_count <= _max_failure_resubmissions()
            and history_id in unsubmitted
        ):
            return (
                f"master_sensor tick {tick.tick_id} failed before submitting its run; the daemon retries it"
            )
    if requesting:
        return None
    for tick in ticks:
        if tick.status == TickStatus.STARTED and tick.timestamp <= queued_at + CLOCK_MARGIN.total_seconds():
            return (
                f"master_sensor tick {tick.tick_id}, which queued it, has not returned its run requests yet"
            )
    return None


def why_no_run(ticks: Sequence[InstigatorTick], history_id: int) -> str:
    """The row's message for an attempt no run will come for (run_still_coming() said None)."""
    requesting = [t for t in ticks if history_id in _requested_attempts(t.run_requests or [])]
    if requesting:
        tick = requesting[0]
        return f"master_sensor tick {tick.tick_id} requested its run but ended {tick.status.value} without creating it"
    return "no master_sensor tick requested a run for it, and none that could still do so is running"
