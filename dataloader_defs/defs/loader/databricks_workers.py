"""Workers as Databricks one-time runs, through dagster-databricks's PipesDatabricksClient: one
`jobs.submit` per worker with a `python_wheel_task` that calls the worker's console script
(`dataloader-pipe`, i.e. `pipes_workers.dataloader_pipe:entrypoint`) from the project's wheel,
installed on the cluster as a library. A wheel task rather than a `spark_python_task`: it runs the
installed package itself (no script file to upload and keep in step with the package), and the
Pipes bootstrap reaches it on a new cluster as environment variables, on an existing cluster as
the task's command-line parameters (the worker reads both; on Databricks it uses the DBFS context
loader and message writer). An interrupted run cancels the runs it submitted (each has its own
run name): PipesDatabricksClient's own way to end a worker, reached from the run's main thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

from dagster import PipesClientCompletedInvocation
from dagster_databricks import PipesDatabricksClient
from databricks.sdk.service import jobs

from dataloader_defs.defs.loader.launcher import (
    MAINTENANCE_WORKER_MODULE,
    WORKER_MODULE,
    Context,
    WorkerLauncher,
    remote_worker_env,
)

PACKAGE_NAME = "dataloader"
# The wheel's console scripts ([project.scripts] in pyproject.toml) per worker module.
ENTRY_POINTS = {WORKER_MODULE: "dataloader-pipe", MAINTENANCE_WORKER_MODULE: "dataloader-maintain-pipe"}
RUN_NAME_PREFIX = "dataloader-worker-"


class DatabricksWorkers(WorkerLauncher):
    """Runs worker modules as Databricks runs of the project's wheel, on a new cluster (spec) or on
    an existing one (id)."""

    kind = "databricks"

    def __init__(
        self,
        pipes_client: PipesDatabricksClient,
        *,
        wheel: str,
        new_cluster: Mapping[str, Any] | None = None,
        existing_cluster_id: str | None = None,
    ) -> None:
        if (new_cluster is None) == (existing_cluster_id is None):
            raise ValueError(
                "Databricks workers need exactly one of a new cluster spec or an existing cluster id"
            )
        self.pipes_client = pipes_client
        self.wheel = wheel
        self.new_cluster = dict(new_cluster) if new_cluster is not None else None
        self.existing_cluster_id = existing_cluster_id
        self._running: set[str] = set()  # run names
        self._lock = threading.Lock()

    def task(self, module: str, env: Mapping[str, str]) -> jobs.SubmitTask:
        """The SubmitTask of one worker: the module's console script from the wheel."""
        if module not in ENTRY_POINTS:
            raise ValueError(f"no console script runs {module} (known: {', '.join(ENTRY_POINTS)})")
        spec: dict[str, Any] = {
            "task_key": "dataloader_worker",
            "python_wheel_task": {"package_name": PACKAGE_NAME, "entry_point": ENTRY_POINTS[module]},
            "libraries": [{"whl": self.wheel}],
        }
        if self.existing_cluster_id:
            spec["existing_cluster_id"] = self.existing_cluster_id
        else:
            cluster = dict(self.new_cluster or {})
            cluster["spark_env_vars"] = {**cluster.get("spark_env_vars", {}), **env}
            spec["new_cluster"] = cluster
        return jobs.SubmitTask.from_dict(spec)

    def run_module(
        self, context: Context, module: str, *, extras: Mapping[str, object], env: Mapping[str, str]
    ) -> PipesClientCompletedInvocation:
        remote_env, left_out = remote_worker_env(env)
        if left_out or (self.existing_cluster_id and remote_env):
            context.log.info(
                "the Databricks cluster's own environment (spark_env_vars, secret references) must set "
                + ", ".join(sorted([*left_out, *(remote_env if self.existing_cluster_id else {})]))
            )
        run_name = f"{RUN_NAME_PREFIX}{uuid.uuid4().hex[:16]}"
        with self._lock:
            self._running.add(run_name)
        try:
            return self.pipes_client.run(
                context=context,
                extras=dict(extras),
                task=self.task(module, remote_env),
                submit_args={"run_name": run_name},
            )
        finally:
            with self._lock:
                self._running.discard(run_name)

    def interrupt(self, context: Context, *, grace_s: float) -> int:
        """Cancel the Databricks runs of the workers still running."""
        with self._lock:
            running = set(self._running)
        if not running:
            return 0
        workspace = self.pipes_client.client
        active = workspace.jobs.list_runs(active_only=True, run_type=jobs.RunType.SUBMIT_RUN)
        cancelled = [run for run in active if run.run_name in running and run.run_id is not None]
        for run in cancelled:
            workspace.jobs.cancel_run(run.run_id)
        context.log.warning(f"run interrupted: cancelled {len(cancelled)} Databricks worker run(s)")
        return len(cancelled)
