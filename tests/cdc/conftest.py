"""The cdc tests need the logical-decoding PostgreSQL (`cdc_pg_url`, tests/conftest.py: `make
cdc-pg-start`, port 5441) and the load-test helpers that live beside the worker tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

SUPPORT = str(Path(__file__).resolve().parents[1] / "pipes_workers")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)


@pytest.fixture(autouse=True)
def _drop_the_tests_slots(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test on the logical-decoding server, drop the replication slots it left (each test
    loads its own tables): the server has a fixed number of slots, and the session's database only
    drops them at the end."""
    yield
    if "cdc_pg_url" not in request.fixturenames:
        return
    url = request.getfixturevalue("cdc_pg_url")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE database = current_database() AND NOT active"
        )
