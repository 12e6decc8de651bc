"""dagster.yaml's storage: one line naming DAGSTER_PG_URL when it is unset; a working PostgreSQL instance when set."""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from dagster import DagsterInstance, job, op

from control_db.urls import sqlalchemy_url
from dataloader_defs.instance_storage import PostgresStorageFromEnv, storage_url

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")


def test_validate_from_the_repo_root_without_environment_says_what_is_missing(tmp_path: Path) -> None:
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no DAGSTER_HOME, no DAGSTER_PG_URL
    done = subprocess.run(
        [DAGSTER, "definitions", "validate"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=180
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and "PostProcessingError" not in done.stderr
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("dagster.yaml: DAGSTER_PG_URL is not set.")
    assert not list(ROOT.glob(".tmp_dagster_home_*"))  # dagster's temporary instance is cleaned up


def test_a_psycopg3_url_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_PG_URL", "postgresql+psycopg://postgres@127.0.0.1/dagster")
    with pytest.raises(SystemExit, match="must use the psycopg2 driver"):
        storage_url("DAGSTER_PG_URL")


@pytest.fixture
def dagster_db(pg_admin_url: str) -> Iterator[str]:
    name = f"dl_dagster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(pg_admin_url)._replace(path=f"/{name}"))
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@op
def say_hello() -> str:
    return "hello"


@job
def hello_job() -> None:
    say_hello()


def test_instance_from_dagster_yaml_keeps_runs_in_postgres(
    dagster_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", sqlalchemy_url(dagster_db, "psycopg2"))

    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_ref().storage_data.class_name == PostgresStorageFromEnv.__name__
        run_id = hello_job.execute_in_process(instance=instance).run_id
        # What the daemon and run workers do: rebuild the instance from its serialised ref.
        with DagsterInstance.from_ref(instance.get_ref()) as rebuilt:
            found = rebuilt.get_run_by_id(run_id)
            assert found is not None and found.is_success
    with psycopg.connect(dagster_db) as conn:
        assert conn.execute("SELECT run_id FROM runs").fetchall() == [(run_id,)]


def test_dagster_yaml_keeps_the_defs_state_in_postgres_and_retries_a_missed_dequeue(
    dagster_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataloader_defs.state_storage import InstanceDefsStateStorage

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", sqlalchemy_url(dagster_db, "psycopg2"))
    state = tmp_path / "state"
    state.write_text('{"fingerprint": "f", "rows": []}')

    with DagsterInstance.from_config(str(home)) as instance:
        # A missed gRPC deadline while dequeuing under load is retried, not a failed run.
        assert instance.run_coordinator.get_run_queue_config().max_user_code_failure_retries == 5
        storage = instance.defs_state_storage
        assert isinstance(storage, InstanceDefsStateStorage)
        storage.upload_state_from_path("dataloader/control_tables", "v1", state)
    with DagsterInstance.from_config(str(home)) as another_process:  # same storage, no shared file
        assert another_process.defs_state_storage.get_latest_version("dataloader/control_tables") == "v1"
        out = tmp_path / "out"
        another_process.defs_state_storage.download_state_to_path("dataloader/control_tables", "v1", out)
        assert out.read_text() == state.read_text()
    with psycopg.connect(dagster_db) as conn:
        keys = [r[0] for r in conn.execute("SELECT key FROM kvs ORDER BY key").fetchall()]
    assert "dataloader/defs_state/dataloader__control_tables/v1" in keys
