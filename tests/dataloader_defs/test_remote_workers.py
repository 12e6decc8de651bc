"""Kubernetes and Databricks workers as configuration: the code location's resources built with
DATALOADER_PIPES_CLIENT=k8s / databricks, a real load run, and the request each client sends,
recorded at the cluster's HTTP API (no cluster here: a recording server stands in for it)."""

from __future__ import annotations

import base64
import json

import pytest
from dagster_pipes import decode_env_var
from defs_support import add_control, materialize_by_hand, row
from remote_api_support import recording_api

from dataloader_defs.defs.loader.databricks_workers import DatabricksWorkers
from dataloader_defs.defs.loader.k8s_workers import WORKER_LABEL, K8sWorkers
from dataloader_defs.defs.resources import default_resources

SOURCE_PASSWORD = "pw-only-the-worker-resolves"
LAKE_SECRET = "lake-secret-key-never-sent"
DATABRICKS_TOKEN = "dapi-token-never-sent"


@pytest.fixture
def remote_table(control_conn, control_db_url, lake_root, monkeypatch) -> str:
    """A control row whose source credentials are environment-variable names (db_kv_scope=env),
    with the orchestrator's environment holding a source password and a lake secret."""
    control_conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES ('remote_src', 'postgresql', %s::jsonb, 'env')",
        (
            '{"host": "SRC_HOST", "port": "SRC_PORT", "database": "SRC_DB", "user": "SRC_USER", '
            '"password": "SRC_PASSWORD"}',
        ),
    )
    add_control(
        control_conn, "r.orders", db_config_key="remote_src", source_table="orders", primary_keys=["id"]
    )
    monkeypatch.setenv("SRC_PASSWORD", SOURCE_PASSWORD)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LAKE_SECRET)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("DATALOADER_CONTROL_DB_URL", control_db_url)
    monkeypatch.setenv("DATALOADER_LAKE_ROOT", "s3://lake/bronze-root")
    return "r.orders"


def _no_secret_in(data: bytes) -> None:
    for secret in (SOURCE_PASSWORD, LAKE_SECRET, DATABRICKS_TOKEN):
        assert secret.encode() not in data


def test_k8s_workers_send_a_pod_running_the_worker_module_in_the_image(
    remote_table, control_conn, control_db, instance, tmp_path, monkeypatch
) -> None:
    def answer(method: str, path: str) -> tuple[int, dict]:
        return 403, {"kind": "Status", "status": "Failure", "message": "recorded", "code": 403}

    with recording_api(answer) as (url, recorded):
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps({
                "apiVersion": "v1", "kind": "Config", "current-context": "test",
                "clusters": [{"name": "test", "cluster": {"server": url}}],
                "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
                "users": [{"name": "test", "user": {"token": "kube-token"}}],
            })
        )  # fmt: skip
        monkeypatch.setenv("DATALOADER_PIPES_CLIENT", "k8s")
        monkeypatch.setenv("DATALOADER_K8S_IMAGE", "registry.example/dataloader:0.1.0")
        monkeypatch.setenv("DATALOADER_K8S_NAMESPACE", "loads")
        monkeypatch.setenv("DATALOADER_K8S_KUBECONFIG", str(kubeconfig))
        monkeypatch.setenv("DATALOADER_K8S_POD_SPEC", '{"serviceAccountName": "dataloader-worker"}')
        resources = default_resources()
        assert isinstance(resources["loader"].workers, K8sWorkers)

        result = materialize_by_hand(
            instance, {**resources, "control_db": control_db}, remote_table, raise_on_error=False
        )

    assert not result.success  # the stand-in refused the pod
    (create,) = [r for r in recorded if r.method == "POST"]
    assert create.path == "/api/v1/namespaces/loads/pods"
    pod = create.json()
    assert pod["metadata"]["labels"][WORKER_LABEL]
    assert pod["spec"]["serviceAccountName"] == "dataloader-worker"
    assert pod["spec"]["restartPolicy"] == "Never"
    (container,) = pod["spec"]["containers"]
    assert container["image"] == "registry.example/dataloader:0.1.0"
    assert container["command"] == ["python", "-m", "pipes_workers.dataloader_pipe"]
    env = {e["name"]: e["value"] for e in container["env"]}
    context = decode_env_var(env["DAGSTER_PIPES_CONTEXT"])["data"]
    request = context["extras"]["load_request"]
    assert request["control_key"] == "r.orders" and request["lake_root"] == "s3://lake/bronze-root"
    assert context["extras"]["asset_key"] == "bronze/test/orders"
    assert json.loads(env["DATALOADER_LAKE_STORAGE_OPTIONS"]) == {"AWS_REGION": "eu-west-1"}
    _no_secret_in(create.body)
    assert row(control_conn, remote_table).last_status == "Failed"  # the run said so, not left In Progress


def test_databricks_workers_submit_a_wheel_task_running_the_worker(
    remote_table, control_conn, control_db, instance, monkeypatch
) -> None:
    def answer(method: str, path: str) -> tuple[int, dict]:
        if path.startswith("/api/2.0/dbfs/read") or path.startswith("/api/2.0/dbfs/get-status"):
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no such file"}
        if "/jobs/runs/submit" in path:
            return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "recorded"}
        return 200, {}

    with recording_api(answer) as (url, recorded):
        monkeypatch.setenv("DATALOADER_PIPES_CLIENT", "databricks")
        monkeypatch.setenv("DATABRICKS_HOST", url)
        monkeypatch.setenv("DATABRICKS_TOKEN", DATABRICKS_TOKEN)
        monkeypatch.setenv(
            "DATALOADER_DATABRICKS_WHEEL", "/Volumes/main/dataloader/wheels/dataloader-0.1.0-py3-none-any.whl"
        )
        monkeypatch.setenv(
            "DATALOADER_DATABRICKS_NEW_CLUSTER",
            '{"spark_version": "15.4.x-scala2.12", "node_type_id": "i3.xlarge", "num_workers": 0}',
        )
        resources = default_resources()
        assert isinstance(resources["loader"].workers, DatabricksWorkers)

        result = materialize_by_hand(
            instance, {**resources, "control_db": control_db}, remote_table, raise_on_error=False
        )

    assert not result.success  # the stand-in refused the submit
    (submit,) = [r for r in recorded if "/jobs/runs/submit" in r.path]
    body = submit.json()
    assert body["run_name"].startswith("dataloader-worker-")
    (task,) = body["tasks"]
    assert task["python_wheel_task"] == {"package_name": "dataloader", "entry_point": "dataloader-pipe"}
    assert task["libraries"] == [{"whl": "/Volumes/main/dataloader/wheels/dataloader-0.1.0-py3-none-any.whl"}]
    env = task["new_cluster"]["spark_env_vars"]
    assert json.loads(env["DATALOADER_LAKE_STORAGE_OPTIONS"]) == {"AWS_REGION": "eu-west-1"}
    # The Pipes context (extras included) goes to DBFS; the task's bootstrap says where.
    context_path = decode_env_var(env["DAGSTER_PIPES_CONTEXT"])["path"]
    (put,) = [r for r in recorded if r.path == "/api/2.0/dbfs/put" and r.json()["path"] == context_path]
    context = json.loads(base64.b64decode(put.json()["contents"]))
    assert context["extras"]["load_request"]["control_key"] == "r.orders"
    for request in recorded:
        _no_secret_in(request.body)
        if request.path == "/api/2.0/dbfs/put":
            _no_secret_in(base64.b64decode(request.json()["contents"]))
    assert row(control_conn, remote_table).last_status == "Failed"
