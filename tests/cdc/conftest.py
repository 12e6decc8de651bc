"""Fixtures for the cdc tests: a PostgreSQL with wal_level=logical (`make cdc-pg-start`, port 5441).

`cdc_pg_url` is a fresh database on it for the session; it skips with the reason when the server is
unreachable or not logical, and fails instead under CI=true (`.ci/run` starts the server).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

# The load-test helpers (loadtest_support) live beside the worker tests.
SUPPORT = str(Path(__file__).resolve().parents[1] / "pipes_workers")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)

DEFAULT_TEST_CDC_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5441/postgres"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def cdc_pg_url() -> Iterator[str]:
    """A fresh database on the logical-decoding PostgreSQL (dropped with its slots afterwards)."""
    admin = os.environ.get("TEST_CDC_POSTGRES_URL", DEFAULT_TEST_CDC_POSTGRES_URL)
    parts = urlsplit(admin)
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        _unavailable(
            f"cdc PostgreSQL unreachable at {parts.hostname}:{parts.port} ({str(exc).strip()[:120]}): "
            "run `make cdc-pg-start` or set TEST_CDC_POSTGRES_URL"
        )
    wal_level = conn.execute("SHOW wal_level").fetchone()[0]  # type: ignore[index]
    if wal_level != "logical":
        conn.close()
        _unavailable(
            f"cdc PostgreSQL at {parts.hostname}:{parts.port} has wal_level={wal_level}, not logical"
        )
    name = f"cdc_src_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    conn.execute(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s", (name,)
    )
    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()
