"""How a worker module is launched: `WorkerLauncher` turns "run this worker module with these Pipes
extras and this environment" into the call of one kind of Dagster Pipes client, and stops the
workers it launched when a run is interrupted. One implementation per client kind:
`LocalWorkers` (below), `K8sWorkers` (k8s_workers.py), `DatabricksWorkers` (databricks_workers.py).
"""

from __future__ import annotations

import json
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

from dagster import AssetExecutionContext, OpExecutionContext, PipesClientCompletedInvocation

from dataloader_defs.defs.loader.local_client import LocalPipesClient

# The worker modules, by name only: the only thing dataloader_defs needs from pipes_workers.
WORKER_MODULE = "pipes_workers.dataloader_pipe"
MAINTENANCE_WORKER_MODULE = "pipes_workers.maintain_pipe"
STORAGE_OPTIONS_ENV = "DATALOADER_LAKE_STORAGE_OPTIONS"
# Storage option names whose values are credentials: never sent to a remote worker in its request.
_SECRET_MARKERS = ("SECRET", "TOKEN", "PASSWORD", "ACCOUNT_KEY", "SAS_KEY", "CLIENT_SECRET")

Context = OpExecutionContext | AssetExecutionContext


class WorkerLauncher(ABC):
    """Runs a Pipes worker module through one kind of Pipes client; stops the workers it started."""

    kind: ClassVar[str]

    @abstractmethod
    def run_module(
        self, context: Context, module: str, *, extras: Mapping[str, object], env: Mapping[str, str]
    ) -> PipesClientCompletedInvocation:
        """Run `python -m <module>` as a Pipes worker and wait for it to end."""

    @abstractmethod
    def interrupt(self, context: Context, *, grace_s: float) -> int:
        """Stop the workers still running (the run was interrupted); how many there were."""


class LocalWorkers(WorkerLauncher):
    """Workers as processes on this host: fresh interpreters, or — for the load worker in a run of
    several tables — forked from the fork server (a one-table run gains nothing: the server imports
    what the fresh worker would)."""

    kind = "subprocess"

    def __init__(self, pipes_client: LocalPipesClient | None = None) -> None:
        self.pipes_client = pipes_client or LocalPipesClient()

    def run_module(
        self, context: Context, module: str, *, extras: Mapping[str, object], env: Mapping[str, str]
    ) -> PipesClientCompletedInvocation:
        selected = getattr(context, "selected_asset_keys", None) or ()
        return self.pipes_client.run(
            context=context,
            command=[sys.executable, "-m", module],
            extras=extras,
            env=env,
            fork=module == WORKER_MODULE and len(selected) > 1,
        )

    def interrupt(self, context: Context, *, grace_s: float) -> int:
        """SIGINT this run's workers, SIGKILL those still running after `grace_s`.

        The subprocess client forwards a termination only to the worker of the thread it arrives
        in, and with several tables loading at once it arrives in none of them. A killed worker
        leaves no half-written commit: every load is one Delta commit, and the next load resumes.
        """
        stopped = self.pipes_client.interrupt_workers(grace_s)
        if stopped:
            context.log.warning(f"run interrupted: stopped {stopped} running worker(s)")
        return stopped


def remote_worker_env(env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """`env` without the credential-valued storage options (a pod or a cluster takes those from its
    own secrets; delta-rs reads an option missing from the JSON from the variable of the same name),
    and the names of the options left out."""
    remote = dict(env)
    raw = remote.pop(STORAGE_OPTIONS_ENV, None)
    if not raw:
        return remote, []
    options = json.loads(raw)
    kept = {k: v for k, v in options.items() if not any(m in k.upper() for m in _SECRET_MARKERS)}
    if kept:
        remote[STORAGE_OPTIONS_ENV] = json.dumps(kept)
    return remote, sorted(set(options) - set(kept))
