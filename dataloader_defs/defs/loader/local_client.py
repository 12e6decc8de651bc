"""The Pipes client of local load workers: Dagster's subprocess client, which keeps the handle of
every worker it started (the `Popen` of a fresh worker, the `Process` of a forked one) so that an
interrupted run can stop exactly its own workers — no pid scanning.

A load worker can be forked from the fork server (fork_server.py) instead of started fresh; where
forking is impossible (a daemonic Celery prefork child, `DATALOADER_WORKER_FORK=off`, no forkserver)
or a fork fails to start, the worker starts fresh and the reason is logged once. Everything else is
the subprocess client's: the Pipes session (context and messages through temp files), a non-zero
exit raised as DagsterPipesExecutionError, SIGINT forwarded when the worker's own thread is
interrupted.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess

from dagster import (
    AssetExecutionContext,
    OpExecutionContext,
    PipesClientCompletedInvocation,
    PipesSubprocessClient,
)
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterPipesExecutionError
from dagster._core.pipes.utils import open_pipes_session

from dataloader_defs.defs.loader import fork_server

# Named, not imported (docs/CONTRACTS.md): the worker asks for SIGKILL when the process of this pid
# (or, for a forked worker, its fork server) ends — pipes_workers/parent_watch.py.
WORKER_PARENT_ENV = "DATALOADER_WORKER_PARENT_PID"


@dataclass(frozen=True)
class RunningWorker:
    """A worker this client started: a fresh subprocess (`popen`) or a forked process (`process`)."""

    pid: int
    popen: subprocess.Popen | None = None
    process: BaseProcess | None = None

    @property
    def forked(self) -> bool:
        return self.process is not None

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None when still running at `timeout`."""
        if self.process is not None:
            return fork_server.wait(self.process, timeout)
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum: int) -> None:
        with contextlib.suppress(OSError):
            if self.popen is not None:
                self.popen.send_signal(signum)
            else:
                os.kill(self.pid, signum)


class LocalPipesClient(PipesSubprocessClient):
    """PipesSubprocessClient that records the workers it runs and can stop them (`interrupt_workers`);
    `run(..., fork=True)` forks the load worker from the fork server when this process can."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._running: dict[int, RunningWorker] = {}
        self._lock = threading.Lock()
        self._told_why_not_forked = False

    def running_workers(self) -> list[RunningWorker]:
        """The workers started by this client that have not ended yet."""
        with self._lock:
            return list(self._running.values())

    def run(  # type: ignore[override]
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        extras: Mapping[str, object] | None = None,
        command: str | Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        fork: bool = False,
    ) -> PipesClientCompletedInvocation:
        """Run `command` (or, with `fork`, the forked load worker) in a Pipes session."""
        with open_pipes_session(
            context=context,
            context_injector=self.context_injector,
            message_reader=self.message_reader,
            extras=extras,
        ) as session:
            worker_env = {**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()}
            workdir = cwd or self.cwd
            worker = (self._fork(context, worker_env, workdir) if fork else None) or self._spawn(
                command, worker_env, workdir
            )
            try:
                code = worker.wait()
            except DagsterExecutionInterruptedError:
                if self.forward_termination:
                    context.log.info("[pipes] execution interrupted, sending SIGINT to the worker.")
                    worker.signal(signal.SIGINT)
                    worker.wait(self.termination_timeout_seconds)
                raise
            finally:
                with self._lock:
                    self._running.pop(worker.pid, None)
            if code != 0:
                raise DagsterPipesExecutionError(f"External execution process failed with code {code}")
        return PipesClientCompletedInvocation(session)

    def _spawn(self, command: str | Sequence[str], env: dict[str, str], cwd: str | None) -> RunningWorker:
        with self._lock:  # registered before anyone can ask to interrupt it
            popen = subprocess.Popen(
                command,
                cwd=cwd,
                # The worker asks to be killed when this process ends (pipes_workers/parent_watch.py).
                env={**env, WORKER_PARENT_ENV: str(os.getpid())},
                stdout=None if self.forward_stdio else subprocess.PIPE,
                stderr=None if self.forward_stdio else subprocess.PIPE,
            )
            worker = self._running[popen.pid] = RunningWorker(popen.pid, popen=popen)
        return worker

    def _fork(
        self, context: OpExecutionContext | AssetExecutionContext, env: dict[str, str], cwd: str | None
    ) -> RunningWorker | None:
        """The forked load worker, or None (told once why) when this process cannot fork one."""
        reason = fork_server.unavailable()
        process = None
        if reason is None:
            process = fork_server.server().Process(  # type: ignore[attr-defined]
                target=runpy.run_module,
                args=(fork_server.FORKED_WORKER_MODULE,),
                kwargs={
                    "init_globals": {
                        "WORKER_ENV": {**env, WORKER_PARENT_ENV: "fork-server"},
                        "WORKER_CWD": cwd or os.getcwd(),
                    },
                    "run_name": "__main__",
                },
            )
            try:
                with self._lock:
                    fork_server.start(process)
                    worker = self._running[process.pid] = RunningWorker(process.pid, process=process)
                return worker
            except Exception as exc:  # e.g. the fork server could not start: fresh workers do
                reason = f"the fork server failed to start a worker ({type(exc).__name__}: {exc})"
        if not self._told_why_not_forked:
            self._told_why_not_forked = True
            context.log.info(f"load workers start as fresh processes: {reason}")
        return None

    def interrupt_workers(self, grace_s: float) -> int:
        """SIGINT every running worker, then SIGKILL those still running after `grace_s` (a worker
        blocked inside a driver call does not see SIGINT). Returns how many were running."""
        workers = self.running_workers()
        for worker in workers:
            worker.signal(signal.SIGINT)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and self._still_running(workers):
            time.sleep(0.2)
        for worker in self._still_running(workers):
            worker.signal(signal.SIGKILL)
        return len(workers)

    def _still_running(self, workers: list[RunningWorker]) -> list[RunningWorker]:
        with self._lock:
            return [w for w in workers if w.pid in self._running]
