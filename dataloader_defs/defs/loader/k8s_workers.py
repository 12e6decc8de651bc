"""Workers as Kubernetes pods, through dagster-k8s's PipesK8sClient: one pod per worker, running
`python -m <module>` in the configured image (the project installed as a package), the Pipes context
injected as an environment variable and the messages read from the pod's log. An interrupted run
deletes the pods it started (each carries a label with its own token): that is PipesK8sClient's own
way to end a worker, reached from the run's main thread."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from typing import Any

from dagster import PipesClientCompletedInvocation
from dagster_k8s import PipesK8sClient
from dagster_k8s.client import DagsterKubernetesClient
from dagster_k8s.utils import detect_current_namespace

from dataloader_defs.defs.loader.launcher import Context, WorkerLauncher, remote_worker_env

WORKER_LABEL = "dataloader/worker"


class K8sWorkers(WorkerLauncher):
    """Runs worker modules as pods in `image` (namespace and a base pod spec optional)."""

    kind = "k8s"

    def __init__(
        self,
        pipes_client: PipesK8sClient,
        *,
        image: str,
        namespace: str | None = None,
        base_pod_spec: Mapping[str, Any] | None = None,
        python: str = "python",
    ) -> None:
        self.pipes_client = pipes_client
        self.image = image
        self.namespace = namespace
        self.base_pod_spec = dict(base_pod_spec or {})
        self.python = python
        self._running: dict[str, str] = {}  # pod label token -> namespace
        self._lock = threading.Lock()
        self._told_left_out = False

    def run_module(
        self, context: Context, module: str, *, extras: Mapping[str, object], env: Mapping[str, str]
    ) -> PipesClientCompletedInvocation:
        remote_env, left_out = remote_worker_env(env)
        if left_out and not self._told_left_out:
            self._told_left_out = True
            context.log.info(f"pods take {', '.join(left_out)} from their own environment (base pod spec)")
        namespace = self.namespace or detect_current_namespace(self.pipes_client.kubeconfig_file) or "default"
        token = uuid.uuid4().hex[:16]
        with self._lock:
            self._running[token] = namespace
        try:
            return self.pipes_client.run(
                context=context,
                extras=dict(extras),
                image=self.image,
                command=[self.python, "-m", module],
                namespace=namespace,
                env=remote_env,
                base_pod_meta={"labels": {WORKER_LABEL: token}},
                base_pod_spec=self.base_pod_spec or None,
            )
        finally:
            with self._lock:
                self._running.pop(token, None)

    def interrupt(self, context: Context, *, grace_s: float) -> int:
        """Delete the pods of the workers still running (their threads then end with an error)."""
        with self._lock:
            running = dict(self._running)
        if not running:
            return 0
        self.pipes_client._load_k8s_config()
        api = DagsterKubernetesClient.production_client().core_api
        for namespace in set(running.values()):
            tokens = sorted(t for t, ns in running.items() if ns == namespace)
            api.delete_collection_namespaced_pod(
                namespace,
                label_selector=f"{WORKER_LABEL} in ({','.join(tokens)})",
                grace_period_seconds=int(grace_s),
            )
        context.log.warning(f"run interrupted: deleted {len(running)} worker pod(s)")
        return len(running)
