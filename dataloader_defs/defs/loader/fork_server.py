"""The fork server load workers are forked from: a process that imported the worker's modules once
(pipes_workers/fork_preload.py), so a forked worker starts in milliseconds instead of spending about
0.25 s of CPU importing pyarrow, deltalake and the drivers again.

Forking is off where it cannot work: `DATALOADER_WORKER_FORK=off`, a platform without the
`forkserver` start method, or a daemonic process (a Celery prefork child), which `multiprocessing`
forbids to start children. `unavailable()` says why, and the caller starts fresh workers instead.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
from functools import lru_cache
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess

FORK_ENV = "DATALOADER_WORKER_FORK"
# The worker's modules, by name only (docs/CONTRACTS.md): what the fork server imports, and what a
# forked process runs.
PRELOAD_MODULE = "pipes_workers.fork_preload"
FORKED_WORKER_MODULE = "pipes_workers.forked_worker"
# One lock for starting forked processes and reading their exit status. multiprocessing reads a
# forked process's exit status from its sentinel once, and every Process.start() polls the other
# running children: two threads reading one status would leave the second with nothing, which
# multiprocessing reports as exit code 255 (a worker that succeeded, recorded as died).
_lock = threading.Lock()


def unavailable() -> str | None:
    """Why load workers cannot be forked in this process, or None when they can."""
    if os.environ.get(FORK_ENV, "on").strip().lower() in ("off", "0", "false", "no"):
        return f"{FORK_ENV} is off"
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "this platform has no forkserver start method"
    if multiprocessing.current_process().daemon:
        # Checked on every call: the same module runs in a Celery pool's daemonic children.
        return "this run executes in a daemonic process (e.g. a Celery prefork child), which may not start children"
    return None


@lru_cache(maxsize=1)
def server() -> BaseContext:
    """The forkserver context that preloads the worker (the server itself starts on first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD_MODULE])
    return context


def start(process: BaseProcess) -> None:
    """Start a forked process (under the lock: its start polls the other children)."""
    with _lock:
        process.start()


def wait(process: BaseProcess, timeout: float | None = None) -> int | None:
    """Wait for a forked process to end; its exit code (None when still running at `timeout`).
    The wait itself holds no lock; reading the status does."""
    multiprocessing.connection.wait([process.sentinel], timeout)
    with _lock:
        return process.exitcode
