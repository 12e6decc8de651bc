"""The Pipes client of the load workers: Dagster's subprocess client, with each load worker forked
from a fork server that imported the worker once (pipes_workers/fork_preload.py, forked_worker.py)
instead of a fresh interpreter importing it again — about 0.25 s of CPU less per table, most of a
small table's worker. Everything else is the subprocess client's: the Pipes session (context and messages through
temp files), a non-zero exit raised as DagsterPipesExecutionError, SIGINT forwarded when the run is
interrupted. A run of one table (its fork server would import what the fresh worker does),
`DATALOADER_WORKER_FORK=off`, a platform without a fork server, or any other command (the
maintenance worker) starts a fresh process as before.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import runpy
import signal
import threading
from collections.abc import Mapping, Sequence
from functools import lru_cache
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

from dagster import (
    AssetExecutionContext,
    OpExecutionContext,
    PipesClientCompletedInvocation,
    PipesSubprocessClient,
)
from dagster._core.errors import DagsterExecutionInterruptedError, DagsterPipesExecutionError
from dagster._core.pipes.utils import open_pipes_session

FORK_ENV = "DATALOADER_WORKER_FORK"
# One lock for the forked workers' bookkeeping. multiprocessing reads a forked process's exit status
# from its sentinel once, and every Process.start() polls the other running children: two threads
# reading one status would leave the second with nothing, which multiprocessing reports as exit code
# 255 (a worker that succeeded, recorded as died). So every start and every status read take it too.
_lock = threading.Lock()
# The worker's modules, by name only (docs/CONTRACTS.md): what the fork server imports, and what a
# forked process runs.
PRELOAD_MODULE = "pipes_workers.fork_preload"
FORKED_WORKER_MODULE = "pipes_workers.forked_worker"
_forked: set[int] = set()


def forked_worker_pids() -> list[int]:
    """The pids of this process's forked load workers that are still running."""
    with _lock:
        return sorted(_forked)


@lru_cache(maxsize=1)
def _fork_server() -> BaseContext | None:
    if os.environ.get(FORK_ENV, "on").strip().lower() in ("off", "0", "false", "no"):
        return None
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD_MODULE])
    return context


def start(process: BaseProcess) -> None:
    """Start a forked process and count it among the running workers (under the lock: its start
    polls the other children)."""
    with _lock:
        process.start()
        _forked.add(process.pid)


def wait(process: BaseProcess, timeout: float | None = None) -> int | None:
    """Wait for a forked process to end; its exit code (None when still running at `timeout`).
    The wait itself holds no lock; reading the status does."""
    multiprocessing.connection.wait([process.sentinel], timeout)
    with _lock:
        return process.exitcode


class ForkingPipesClient(PipesSubprocessClient):
    """PipesSubprocessClient whose load workers (`worker_command`) are forked from a fork server
    when the run loads more than one table."""

    def __init__(self, worker_command: Sequence[str], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.worker_command = list(worker_command)

    def _forks(
        self, context: OpExecutionContext | AssetExecutionContext, command: str | Sequence[str]
    ) -> bool:
        # One table's run gains nothing: the fork server imports what the fresh worker would.
        selected = getattr(context, "selected_asset_keys", None) or ()
        return list(command) == self.worker_command and len(selected) > 1

    def run(  # type: ignore[override]
        self,
        *,
        context: OpExecutionContext | AssetExecutionContext,
        extras: Mapping[str, object] | None = None,
        command: str | Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> PipesClientCompletedInvocation:
        """Run the load worker forked (any other command as a subprocess) in a Pipes session."""
        server = _fork_server() if self._forks(context, command) else None
        if server is None:
            return super().run(context=context, extras=extras, command=command, env=env, cwd=cwd)
        with open_pipes_session(
            context=context,
            context_injector=self.context_injector,
            message_reader=self.message_reader,
            extras=extras,
        ) as session:
            worker_env = {**os.environ, **self.env, **(env or {}), **session.get_bootstrap_env_vars()}
            forked = {"WORKER_ENV": worker_env, "WORKER_CWD": cwd or self.cwd or os.getcwd()}
            process = server.Process(  # type: ignore[attr-defined]
                target=runpy.run_module,
                args=(FORKED_WORKER_MODULE,),
                kwargs={"init_globals": forked, "run_name": "__main__"},
            )
            start(process)
            try:
                code = wait(process)
            except DagsterExecutionInterruptedError:
                if self.forward_termination:
                    context.log.info("[pipes] execution interrupted, sending SIGINT to the forked worker.")
                    os.kill(process.pid, signal.SIGINT)
                    wait(process, self.termination_timeout_seconds)
                raise
            finally:
                with _lock:
                    _forked.discard(process.pid)
            if code != 0:
                raise DagsterPipesExecutionError(f"External execution process failed with code {code}")
        return PipesClientCompletedInvocation(session)
