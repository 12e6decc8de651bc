"""Resources: the control database, lake/secrets/models locations, and the table loader.

Swap implementations by resource (the loader's workers run through a local, Kubernetes or Databricks
Pipes client chosen by DATALOADER_PIPES_CLIENT), never by `if` in asset bodies.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from dagster import ConfigurableResource, EnvVar
from pydantic import Field

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


# LakeStorage field -> the environment variable it is read from (delta-rs/object_store names).
LAKE_STORAGE_ENV = {
    "options_json": "DATALOADER_LAKE_STORAGE_OPTIONS",
    "aws_endpoint_url": "AWS_ENDPOINT_URL",
    "aws_region": "AWS_REGION",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "aws_session_token": "AWS_SESSION_TOKEN",
    "aws_allow_http": "AWS_ALLOW_HTTP",
    "google_service_account_path": "GOOGLE_SERVICE_ACCOUNT_PATH",
    "azure_storage_account_name": "AZURE_STORAGE_ACCOUNT_NAME",
    "azure_storage_account_key": "AZURE_STORAGE_ACCOUNT_KEY",
}


class LakeStorage(ConfigurableResource):
    """Object-storage options for an s3:// (or S3-compatible), gs:// or az:// lake root.

    `options_json` is a JSON object of delta-rs storage options; the named fields override its keys.
    The workers get them all as DATALOADER_LAKE_STORAGE_OPTIONS in their environment (never in Pipes
    extras or metadata).
    """

    options_json: str | None = Field(default=None, description="JSON object of delta-rs storage options")
    aws_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint URL")
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    aws_allow_http: str | None = Field(default=None, description="'true' to allow a plain http:// endpoint")
    google_service_account_path: str | None = None
    azure_storage_account_name: str | None = None
    azure_storage_account_key: str | None = None

    def options(self) -> dict[str, str]:
        """The storage options: `options_json` plus every named field that is set."""
        options = json.loads(self.options_json) if self.options_json else {}
        if not isinstance(options, dict):
            raise ValueError("DATALOADER_LAKE_STORAGE_OPTIONS must be a JSON object")
        for name, env_name in LAKE_STORAGE_ENV.items():
            value = getattr(self, name)
            if name != "options_json" and value:
                options[env_name] = value
        return {str(k): str(v) for k, v in options.items()}

    def worker_env(self) -> dict[str, str]:
        """DATALOADER_LAKE_STORAGE_OPTIONS for a worker process (empty when nothing is set)."""
        options = self.options()
        return {"DATALOADER_LAKE_STORAGE_OPTIONS": json.dumps(options)} if options else {}


def lake_storage_from_env() -> LakeStorage:
    """LakeStorage with an EnvVar for every variable set in this environment (unset ones stay None)."""
    return LakeStorage(**{name: EnvVar(var) for name, var in LAKE_STORAGE_ENV.items() if os.environ.get(var)})


class DataloaderSettings(ConfigurableResource):
    """Where the lake, the secrets and the staging models live."""

    lake_root: str = Field(description="Local path or s3://… under which destination tables live")
    secrets_dir: str | None = Field(default=None, description="Directory for db_kv_scope=file secrets")
    models_dir: str | None = Field(
        default=None, description="Where landing_table_git_job writes staging models"
    )
    dagster_url: str | None = Field(default=None, description="Base URL of the Dagster UI, for run links")
    lake_storage: LakeStorage = Field(
        default_factory=LakeStorage, description="Object-storage options for the lake root"
    )

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
        """Environment passed to the worker: object-storage options and the secrets directory (never
        secret values); the lake root travels in the load request."""
        env = {**self.lake_storage.worker_env()}
        secrets_dir = self.resolved_secrets_dir()
        if secrets_dir:
            env["DATALOADER_SECRETS_DIR"] = secrets_dir
        return env


def default_resources() -> dict[str, object]:
    """The resources of the code location; URLs and paths come from the environment."""
    # Imported here: the loader's modules use the resources of this module.
    from dataloader_defs.defs.loader import TableLoader, workers_from_env

    control_db = ControlDatabase(url=EnvVar("DATALOADER_CONTROL_DB_URL"))
    settings = DataloaderSettings(
        lake_root=EnvVar("DATALOADER_LAKE_ROOT"), lake_storage=lake_storage_from_env()
    )
    return {
        "control_db": control_db,
        "settings": settings,
        "loader": TableLoader(control_db=control_db, settings=settings, workers=workers_from_env()),
    }
