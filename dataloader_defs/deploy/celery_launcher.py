"""dagster-celery's run launcher, made to notice a dead worker host and to stop a run it terminates.

The stock `CeleryRunLauncher` (0.29.27) reads only the task state in the result backend. A worker
host that is SIGKILLed leaves its task STARTED there for good, so the run stayed STARTED too (and
held one of its source's run slots); `terminate` revoked with SIGTERM and returned True whether or
not anything stopped, and the run ended FAILURE, never CANCELED, so nothing downstream knew it was
cancelled. This subclass

- asks the worker that holds a STARTED task (its name is in the task's STARTED meta, which
  dagster-celery's `track_started` task records) whether it still runs it; after
  `worker_missed_checks` checks in a row without that answer (`worker_check_timeout` seconds each,
  so one slow reply from a busy worker fails nothing) the run's worker is reported FAILED, naming the
  worker, and Dagster's run monitoring fails the run;
- terminates a run as Dagster's own launchers do: the run is reported CANCELING first (an interrupted
  run then ends CANCELED), its run process gets SIGINT (Dagster raises it inside the step, which stops
  the run's Pipes workers and records its tables), and a run still going `terminate_grace_seconds`
  later is killed (SIGKILL, through the worker command in celery_control.py, which workers must
  import) and reported canceled. A task not started yet is revoked; a run whose
  worker no longer answers is reported canceled at once (there is nothing left to stop).

The result backend must be one every process reads (Redis), not `rpc://`. Config (dagster.yaml,
`run_launcher: module: dataloader_defs.deploy.celery_launcher, class: DataloaderCeleryRunLauncher`):
the stock launcher's keys plus the three above.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery.result import AsyncResult
from dagster import DagsterRun, DagsterRunStatus, Field
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._serdes import ConfigurableClassData
from dagster_celery.launcher import CeleryRunLauncher
from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

from dataloader_defs.deploy.celery_control import KILL_COMMAND

DEFAULT_CHECK_TIMEOUT_S = 5.0
DEFAULT_MISSED_CHECKS = 3
DEFAULT_TERMINATE_GRACE_S = 30.0
_POLL_S = 0.5


@dataclass(frozen=True)
class TaskHolder:
    """The Celery worker (node name) and pool process that started a task."""

    hostname: str
    pid: int | None

    def __str__(self) -> str:
        return f"{self.hostname} (pid {self.pid})" if self.pid else self.hostname


def task_holder(result: AsyncResult) -> TaskHolder | None:
    """Who runs a STARTED task, from the meta `track_started` stores; None for any other state."""
    if result.state != "STARTED" or not isinstance(result.info, Mapping):
        return None
    hostname = result.info.get("hostname")
    pid = result.info.get("pid")
    return TaskHolder(str(hostname), int(pid) if pid else None) if hostname else None


class DataloaderCeleryRunLauncher(CeleryRunLauncher):
    """`CeleryRunLauncher` that detects a dead worker and really stops (and cancels) a terminated run."""

    def __init__(
        self,
        default_queue: str,
        broker: str | None = None,
        backend: str | None = None,
        include: list[str] | None = None,
        config_source: dict | None = None,
        inst_data: ConfigurableClassData | None = None,
        worker_check_timeout: float = DEFAULT_CHECK_TIMEOUT_S,
        worker_missed_checks: int = DEFAULT_MISSED_CHECKS,
        terminate_grace_seconds: float = DEFAULT_TERMINATE_GRACE_S,
    ) -> None:
        super().__init__(
            default_queue=default_queue,
            broker=broker,
            backend=backend,
            include=include,
            config_source=config_source,
            inst_data=inst_data,
        )
        self.worker_check_timeout = float(worker_check_timeout)
        self.worker_missed_checks = max(1, int(worker_missed_checks))
        self.terminate_grace_seconds = float(terminate_grace_seconds)
        # run id -> checks in a row whose holder did not confirm the task (this process only: a
        # restarted daemon starts counting again, which errs on the side of a live run)
        self._missed: dict[str, int] = {}

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {
            **super().config_type(),
            "worker_check_timeout": Field(
                float,
                is_required=False,
                default_value=DEFAULT_CHECK_TIMEOUT_S,
                description="Seconds to wait for the worker holding a run's task to answer one check.",
            ),
            "worker_missed_checks": Field(
                int,
                is_required=False,
                default_value=DEFAULT_MISSED_CHECKS,
                description="Checks in a row without an answer before the run's worker counts as dead "
                "(one happens every run_monitoring.poll_interval_seconds).",
            ),
            "terminate_grace_seconds": Field(
                float,
                is_required=False,
                default_value=DEFAULT_TERMINATE_GRACE_S,
                description="Seconds a terminated run has to stop after SIGINT before it is killed.",
            ),
        }

    def holds_task(self, hostname: str, task_id: str) -> bool | None:
        """True when worker `hostname` answers that it runs `task_id`, False when it answers without
        it (e.g. restarted under the same name), None when it does not answer in time."""
        inspect = self.celery.control.inspect(destination=[hostname], timeout=self.worker_check_timeout)
        replies = inspect.query_task(task_id) or {}
        if hostname not in replies:
            return None
        return task_id in (replies[hostname] or {})

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        if task_id is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "the run has no Celery task id")
        result = self.celery.AsyncResult(task_id)
        holder = task_holder(result)
        if holder is None:  # not STARTED (or started without meta): the stock answer
            self._missed.pop(run.run_id, None)
            return self._status_of_state(result)
        answer = self.holds_task(holder.hostname, task_id)
        if answer or self.celery.AsyncResult(task_id).state != "STARTED":  # alive, or it just ended
            self._missed.pop(run.run_id, None)
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        missed = self._missed.get(run.run_id, 0) + 1
        what = "did not answer" if answer is None else "answered but no longer runs the task"
        if missed < self.worker_missed_checks:
            self._missed[run.run_id] = missed
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                f"Celery worker {holder} {what} ({missed} of {self.worker_missed_checks})",
            )
        self._missed.pop(run.run_id, None)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"Celery worker {holder} {what} {missed} checks in a row ({self.worker_check_timeout:g}s each): "
            f"the run process of task {task_id} is gone with it",
        )

    @staticmethod
    def _status_of_state(result: AsyncResult) -> CheckRunHealthResult:
        state = result.state
        if state == "SUCCESS":
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        if state == "FAILURE":
            error = result.info
            detail = (
                f": {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                if error
                else ""
            )
            return CheckRunHealthResult(WorkerStatus.FAILED, f"Celery task failed{detail}")
        if state == "STARTED":
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"Unknown task status: {state}")

    def get_run_worker_debug_info(
        self, run: DagsterRun, include_container_logs: bool | None = True
    ) -> str | None:
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        if task_id is None:
            return None
        result = self.celery.AsyncResult(task_id)
        holder = task_holder(result)
        return str(
            {
                "run_id": run.run_id,
                "celery_task_id": task_id,
                "task_status": result.state,
                "worker": str(holder),
            }
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            return False
        if run.status != DagsterRunStatus.CANCELING:
            self._instance.report_run_canceling(run, message="Terminating the run on its Celery worker.")
        task_id = run.tags.get(DAGSTER_CELERY_TASK_ID_TAG)
        if task_id is None:
            return self._canceled(run_id, "Canceled before it reached Celery.")
        result = self.celery.AsyncResult(task_id)
        holder = task_holder(result)
        if holder is None:
            state = result.state
            result.revoke()  # a worker that has not started it yet drops it
            return self._canceled(
                run_id, f"Canceled: its Celery task {task_id} was {state}, nothing ran to stop."
            )
        if self.holds_task(holder.hostname, task_id) is None:
            # Nothing reachable to stop; should the worker only be slow, the interrupt still reaches it.
            self._revoke(run, task_id, holder, "SIGINT")
            return self._canceled(
                run_id, f"Canceled: Celery worker {holder} did not answer, its run process is presumed gone."
            )
        self._revoke(run, task_id, holder, "SIGINT")
        if self._wait_finished(run_id, self.terminate_grace_seconds):
            return True
        killed = self._kill_pool_process(holder)
        return self._canceled(
            run_id,
            f"Canceled: the run did not stop within {self.terminate_grace_seconds:g}s of SIGINT; {killed}.",
        )

    def _kill_pool_process(self, holder: TaskHolder) -> str:
        """SIGKILL the holder's pool process through the worker's `dataloader_kill_pool_process`
        command (celery_control.py); what happened, for the cancel message."""
        if holder.pid is None:
            return f"Celery worker {holder} did not say which process runs it, nothing was killed"
        replies = self.celery.control.broadcast(
            KILL_COMMAND,
            arguments={"pid": holder.pid, "signal": "SIGKILL"},
            destination=[holder.hostname],
            reply=True,
            timeout=self.worker_check_timeout,
        )
        answer = next((reply[holder.hostname] for reply in replies or [] if holder.hostname in reply), None)
        if isinstance(answer, dict) and "ok" in answer:
            return f"its process on Celery worker {holder} was killed (SIGKILL)"
        detail = answer.get("error") if isinstance(answer, dict) else "no answer"
        return (
            f"Celery worker {holder} could not kill its process ({detail}; does the worker import "
            "dataloader_defs.deploy.celery_control?)"
        )

    def _revoke(self, run: DagsterRun, task_id: str, holder: TaskHolder, signal: str) -> None:
        self.celery.control.revoke(task_id, destination=[holder.hostname], terminate=True, signal=signal)
        self._instance.report_engine_event(
            f"Sent {signal} to the run process on Celery worker {holder}.", run, cls=self.__class__
        )

    def _wait_finished(self, run_id: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            run = self._instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_S)

    def _canceled(self, run_id: str, message: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            self._instance.report_run_canceled(run, message=message)
        return True
