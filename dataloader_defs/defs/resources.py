"""Resources: the control database, lake/secrets/models locations, and the Pipes client.

Swap implementations by resource (e.g. a Kubernetes or Databricks Pipes client under the key
`pipes_client`), never by `if` in asset bodies.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from dagster import ConfigurableResource, EnvVar, PipesSubprocessClient
from pydantic import Field

# The worker command: the only thing dataloader_defs needs from pipes_workers (DESIGN §1).
WORKER_MODULE = "pipes_workers.dataloader_pipe"
DEFAULT_MODELS_DIR = ".dataloader/models"


class ControlDatabase(ConfigurableResource):
    """The control PostgreSQL database (libpq URL from DATALOADER_CONTROL_DB_URL)."""

    url: str = Field(description="libpq URL of the control database")

    @contextmanager
    def connect(self, component: str) -> Iterator[psycopg.Connection]:
        """An autocommit connection tagged `application_name = dataloader-<component>`."""
        from control_db import queries

        conn = queries.connect(self.url, component)
        try:
            yield conn
        finally:
            conn.close()


class DataloaderSettings(ConfigurableResource):
    """Where the lake, the secrets and the staging models live."""

    lake_root: str = Field(description="Local path or s3://… under which destination tables live")
    secrets_dir: str | None = Field(default=None, description="Directory for db_kv_scope=file secrets")
    models_dir: str | None = Field(
        default=None, description="Where landing_table_git_job writes staging models"
    )
    dagster_url: str | None = Field(default=None, description="Base URL of the Dagster UI, for run links")

    def resolved_secrets_dir(self) -> str | None:
        """The secrets directory: this resource's value, else DATALOADER_SECRETS_DIR."""
        return self.secrets_dir or os.environ.get("DATALOADER_SECRETS_DIR") or None

    def resolved_models_dir(self) -> Path:
        """The models directory: this resource's value, else DATALOADER_MODELS_DIR, else .dataloader/models."""
        return Path(self.models_dir or os.environ.get("DATALOADER_MODELS_DIR") or DEFAULT_MODELS_DIR)

    def run_url(self, run_id: str) -> str:
        """Link to a run in the Dagster UI (DATALOADER_DAGSTER_URL, default http://127.0.0.1:3000)."""
        base = self.dagster_url or os.environ.get("DATALOADER_DAGSTER_URL") or "http://127.0.0.1:3000"
        return f"{base.rstrip('/')}/runs/{run_id}"

    def worker_env(self) -> dict[str, str]:
        """Environment passed to the worker: the secrets directory (never secret values). The lake
        root travels in the load request."""
        env: dict[str, str] = {}
        secrets_dir = self.resolved_secrets_dir()
        if secrets_dir:
            env["DATALOADER_SECRETS_DIR"] = secrets_dir
        return env


def worker_command() -> list[str]:
    """The Pipes worker command, run with this interpreter."""
    return [sys.executable, "-m", WORKER_MODULE]


def default_resources() -> dict[str, object]:
    """The resources of the code location; URLs and paths come from the environment."""
    return {
        "control_db": ControlDatabase(url=EnvVar("DATALOADER_CONTROL_DB_URL")),
        "settings": DataloaderSettings(lake_root=EnvVar("DATALOADER_LAKE_ROOT")),
        "pipes_client": PipesSubprocessClient(),
    }
