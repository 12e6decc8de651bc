"""A Celery remote-control command the run launcher needs on every worker: kill one pool process.

Celery forgets a task once it has been revoked with `terminate=True` (the first, SIGINT, revoke of a
terminated run), so a second revoke cannot reach a run that ignored the interrupt. The launcher then
asks the worker that holds the run to kill that run's pool process (its pid is in the task's STARTED
meta). Workers load this module through their `imports` setting (`imports =
["dataloader_defs.deploy.celery_control"]` in dagster_celery_config.py, or `-I` on `celery worker`).
"""

from __future__ import annotations

import os
import signal as signals

from celery.worker.control import control_command, ok

KILL_COMMAND = "dataloader_kill_pool_process"


@control_command(args=[("pid", int), ("signal", str)], signature="<pid> [signal]")
def dataloader_kill_pool_process(state, pid: int, signal: str = "SIGKILL", **_kwargs) -> dict:
    """Send `signal` to pool process `pid` of this worker; refuse any pid that is not one of its pool's."""
    pool_pids = state.consumer.pool.info.get("processes") or []
    if int(pid) not in pool_pids:
        return {"error": f"pid {pid} is not a pool process of this worker ({pool_pids})"}
    os.kill(int(pid), getattr(signals, signal))
    return ok(f"sent {signal} to pool process {pid}")
