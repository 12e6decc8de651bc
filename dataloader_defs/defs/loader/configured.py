"""The worker launcher a deployment configures: DATALOADER_PIPES_CLIENT = `subprocess` (default:
workers on this host), `k8s` (pods through dagster-k8s's PipesK8sClient) or `databricks` (one-time
runs through dagster-databricks's PipesDatabricksClient), each with its settings from the
environment (README, Scale-out). Credentials are read from the variables named here at run time and
never copied into a worker's request."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

from dataloader_defs.defs.loader.launcher import LocalWorkers, WorkerLauncher

PIPES_CLIENT_ENV = "DATALOADER_PIPES_CLIENT"
PipesClientKind = Literal["subprocess", "k8s", "databricks"]
PIPES_CLIENT_KINDS: tuple[str, ...] = get_args(PipesClientKind)


def _required(env: Mapping[str, str], name: str, kind: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ValueError(f"{PIPES_CLIENT_ENV}={kind} needs {name}")
    return value


def _json_object(env: Mapping[str, str], name: str) -> dict[str, Any] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object")
    return value


def _local(env: Mapping[str, str]) -> WorkerLauncher:
    return LocalWorkers()


def _k8s(env: Mapping[str, str]) -> WorkerLauncher:
    from dagster_k8s import PipesK8sClient

    from dataloader_defs.defs.loader.k8s_workers import K8sWorkers

    client = PipesK8sClient(
        kubeconfig_file=env.get("DATALOADER_K8S_KUBECONFIG") or None,
        kube_context=env.get("DATALOADER_K8S_CONTEXT") or None,
        poll_interval=float(env.get("DATALOADER_K8S_POLL_S") or 2.0),
    )
    return K8sWorkers(
        client,
        image=_required(env, "DATALOADER_K8S_IMAGE", "k8s"),
        namespace=env.get("DATALOADER_K8S_NAMESPACE") or None,
        base_pod_spec=_json_object(env, "DATALOADER_K8S_POD_SPEC"),
        python=env.get("DATALOADER_K8S_PYTHON") or "python",
    )


def _databricks(env: Mapping[str, str]) -> WorkerLauncher:
    from dagster_databricks import PipesDatabricksClient
    from databricks.sdk import WorkspaceClient

    from dataloader_defs.defs.loader.databricks_workers import DatabricksWorkers

    host_env = env.get("DATALOADER_DATABRICKS_HOST_ENV") or "DATABRICKS_HOST"
    token_env = env.get("DATALOADER_DATABRICKS_TOKEN_ENV") or "DATABRICKS_TOKEN"
    workspace = WorkspaceClient(
        host=_required(env, host_env, "databricks"), token=_required(env, token_env, "databricks")
    )
    new_cluster = _json_object(env, "DATALOADER_DATABRICKS_NEW_CLUSTER")
    return DatabricksWorkers(
        PipesDatabricksClient(
            workspace, poll_interval_seconds=float(env.get("DATALOADER_DATABRICKS_POLL_S") or 5)
        ),
        wheel=_required(env, "DATALOADER_DATABRICKS_WHEEL", "databricks"),
        new_cluster=new_cluster,
        existing_cluster_id=env.get("DATALOADER_DATABRICKS_CLUSTER_ID") or None,
    )


LAUNCHERS: dict[str, Callable[[Mapping[str, str]], WorkerLauncher]] = {
    "subprocess": _local,
    "k8s": _k8s,
    "databricks": _databricks,
}


def workers_from_env(env: Mapping[str, str] | None = None) -> WorkerLauncher:
    """The launcher DATALOADER_PIPES_CLIENT names (default `subprocess`), configured from `env`
    (default: this process's environment)."""
    env = os.environ if env is None else env
    kind = (env.get(PIPES_CLIENT_ENV) or "subprocess").strip().lower()
    if kind not in LAUNCHERS:
        raise ValueError(f"{PIPES_CLIENT_ENV}={kind!r} is not one of {', '.join(PIPES_CLIENT_KINDS)}")
    return LAUNCHERS[kind](env)
