"""A Dagster instance on PostgreSQL that launches runs with DataloaderCeleryRunLauncher, and real Celery
workers (RabbitMQ broker, Redis result backend) that execute them; each test has its own queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, reconstructable

from control_db.urls import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[2]
BROKER = os.environ.get("TEST_CELERY_BROKER", "pyamqp://guest:guest@127.0.0.1:5672//")
BACKEND = os.environ.get("TEST_CELERY_BACKEND", "redis://127.0.0.1:6379/7")
CELERY = str(Path(sys.executable).parent / "celery")

DAGSTER_YAML = """\
storage:
  custom:
    module: dataloader_defs.instance_storage
    class: PostgresStorageFromEnv
    config: {{url_env: DAGSTER_PG_URL}}
run_launcher:
  module: dataloader_defs.deploy.celery_launcher
  class: DataloaderCeleryRunLauncher
  config:
    broker: "{broker}"
    backend: "{backend}"
    default_queue: "{queue}"
    worker_check_timeout: 1
    worker_missed_checks: 3
    terminate_grace_seconds: {grace}
run_monitoring:
  enabled: true
  poll_interval_seconds: 1
telemetry:
  enabled: false
"""


def servers_or_skip() -> None:
    """Skip (fail under CI=true) when RabbitMQ or Redis does not answer."""
    import kombu
    import redis

    try:
        with kombu.Connection(BROKER, connect_timeout=3) as conn:
            conn.connect()
        redis.Redis.from_url(BACKEND, socket_connect_timeout=3).ping()
    except Exception as exc:
        reason = (
            f"Celery servers unreachable ({type(exc).__name__}: {exc}): RabbitMQ {BROKER}, Redis {BACKEND}"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class CeleryDeployment:
    """The instance's home, its queue, and the workers started for it."""

    home: Path
    queue: str
    env: dict[str, str]
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str) -> str:
        """Start a Celery worker host (its own session and folder) on the queue; its node name once it answers."""
        folder = self.home.parent / f"worker-{name}"
        folder.mkdir()
        (folder / "dagster_celery_config.py").write_text(
            f"broker_url = {BROKER!r}\nresult_backend = {BACKEND!r}\nworker_prefetch_multiplier = 1\n"
            "imports = ['dataloader_defs.deploy.celery_control']\n"
        )
        node = f"{name}-{uuid.uuid4().hex[:6]}@{os.uname().nodename}"
        log = open(folder / "worker.log", "w")  # noqa: SIM115 - closed with the process at teardown
        worker = subprocess.Popen(
            [CELERY, "-A", "dagster_celery.app", "worker", "-Q", self.queue, "-n", node, "-c", "1",
             "--without-mingle", "--without-gossip", "-l", "INFO"],
            cwd=folder,
            env={**self.env, "PYTHONPATH": os.pathsep.join([str(folder), str(Path(__file__).parent), str(ROOT)])},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.workers.append(worker)
        app = _app()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if app.control.ping(destination=[node], timeout=1):
                return node
            assert worker.poll() is None, (folder / "worker.log").read_text()[-3000:]
        raise AssertionError(f"Celery worker {node} did not answer within 90 s")

    def kill_worker_host(self, index: int = 0) -> None:
        """SIGKILL a worker host: its main process and every process of its session."""
        worker = self.workers[index]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def _app():
    from celery import Celery

    return Celery(broker=BROKER, backend=BACKEND)


@pytest.fixture(name="dagster_pg_url")
def dagster_pg_url_fixture(pg_admin_url: str) -> Iterator[str]:
    """A fresh database for Dagster's storage (psycopg2 URL); dropped afterwards."""
    name = f"dl_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(pg_admin_url)._replace(path=f"/{name}"))
    yield sqlalchemy_url(url, "psycopg2")
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


TERMINATE_GRACE_S = 5


@pytest.fixture(name="celery_deployment")
def celery_deployment_fixture(
    tmp_path: Path, dagster_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CeleryDeployment]:
    """A DAGSTER_HOME whose instance launches on a fresh queue; workers, queue and result keys go at the end."""
    servers_or_skip()
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    grace = TERMINATE_GRACE_S
    home = tmp_path / "dagster_home"
    home.mkdir()
    queue = f"dl-test-{uuid.uuid4().hex[:10]}"
    (home / "dagster.yaml").write_text(
        DAGSTER_YAML.format(broker=BROKER, backend=BACKEND, queue=queue, grace=grace)
    )
    env = {**os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_URL": dagster_pg_url}
    deployment = CeleryDeployment(home, queue, env)
    try:
        yield deployment
    finally:
        for worker in deployment.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
        _forget(deployment)


def _forget(deployment: CeleryDeployment) -> None:
    """Delete this test's queue and its tasks' result keys (nothing else in the shared servers)."""
    import kombu
    import redis
    from dagster_celery.tags import DAGSTER_CELERY_TASK_ID_TAG

    with kombu.Connection(BROKER) as conn:
        conn.default_channel.queue_delete(deployment.queue)
    with instance_of(deployment) as instance:
        task_ids = [
            r.tags[DAGSTER_CELERY_TASK_ID_TAG]
            for r in instance.get_runs()
            if DAGSTER_CELERY_TASK_ID_TAG in r.tags
        ]
    if task_ids:
        redis.Redis.from_url(BACKEND).delete(*[f"celery-task-meta-{task_id}" for task_id in task_ids])


def instance_of(deployment: CeleryDeployment) -> DagsterInstance:
    """The deployment's instance (DAGSTER_PG_URL is set by the fixture)."""
    return DagsterInstance.from_config(str(deployment.home))


def launch_sleep_run(
    instance: DagsterInstance, marker_dir: Path, *, stubborn: bool = False, tags=None
) -> DagsterRun:
    """Create and launch a run of celery_sleep_job.sleep_job (loadable by the workers from its file)."""
    from celery_sleep_job import sleep_job

    marker_dir.mkdir(parents=True, exist_ok=True)
    run = instance.create_run_for_job(
        job_def=sleep_job,
        run_config={
            "ops": {"sleep_until_stopped": {"config": {"marker_dir": str(marker_dir), "stubborn": stubborn}}}
        },
        tags=tags or {},
        job_code_origin=reconstructable(sleep_job).get_python_origin(),
    )
    instance.launch_run(run.run_id, workspace=None)  # what the queued-run coordinator's dequeuer does
    return run


def wait_for(predicate, what: str, timeout: float = 120.0, every: float = 0.3):
    """Poll `predicate` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def wait_started(instance: DagsterInstance, run_id: str, marker_dir: Path) -> int:
    """Wait until the run is STARTED and its op runs; the op's process id."""

    def reached() -> bool:
        run = instance.get_run_by_id(run_id)
        assert not run.is_finished, f"run {run_id} ended {run.status.value} before its op ran"
        return (marker_dir / "pid").exists()

    wait_for(reached, f"run {run_id} to reach its op")
    assert instance.get_run_by_id(run_id).status == DagsterRunStatus.STARTED
    return int((marker_dir / "pid").read_text())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = (
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if Path(f"/proc/{pid}").exists()
        else "X"
    )
    return state not in ("Z", "X")
