"""The Dagster instance storage dagster.yaml names: PostgreSQL at the URL in DAGSTER_PG_URL.

Dagster's own `storage: postgres: postgres_url: {env: …}` ends in a `PostProcessingError` traceback
when the variable is unset, which is what anyone running `dagster dev` or `dagster definitions
validate` from the repository root without `make dev` met first. This class reads the variable
itself and stops with one line naming it. It deliberately has no SQLite fallback: a production
daemon that lost its DAGSTER_PG_URL must not quietly keep its runs in a local file.

In the `dagster-daemon run` process it also takes the instance's daemon lock: a second daemon on the
same storage stops at startup (dataloader_defs.daemon_lock).
"""

from __future__ import annotations

import os

from dagster import Field
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

from dataloader_defs.daemon_lock import claim_if_daemon

DEFAULT_URL_ENV = "DAGSTER_PG_URL"


def storage_url(name: str) -> str:
    """The storage URL from environment variable `name`; SystemExit with one line when unusable."""
    url = os.environ.get(name, "").strip()
    if not url:
        raise SystemExit(
            f"dagster.yaml: {name} is not set. It names the PostgreSQL database for Dagster's runs and "
            f"events, e.g. {name}=postgresql+psycopg2://postgres@127.0.0.1:5432/dagster "
            "(`make dev` sets it and DAGSTER_HOME for you)."
        )
    if url.startswith("postgresql+psycopg://"):
        raise SystemExit(
            f"dagster.yaml: {name} must use the psycopg2 driver (postgresql+psycopg2://…): "
            "dagster-postgres' LISTEN/NOTIFY breaks under psycopg 3."
        )
    return url


class PostgresStorageFromEnv(DagsterPostgresStorage):
    """DagsterPostgresStorage whose URL comes from the environment variable `url_env`."""

    @classmethod
    def config_type(cls) -> dict[str, Field]:
        return {"url_env": Field(str, is_required=False, default_value=DEFAULT_URL_ENV)}

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, str]
    ) -> PostgresStorageFromEnv:
        url = storage_url(config_value["url_env"])
        storage = cls(postgres_url=url, inst_data=inst_data)  # retries while the server starts
        claim_if_daemon(url)  # one `dagster-daemon run` per instance (dataloader_defs.daemon_lock)
        return storage
