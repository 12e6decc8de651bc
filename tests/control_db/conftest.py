"""Helpers for control_db tests: insert source and control rows with sensible defaults."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
from control_rows import AddTable, insert_table


@pytest.fixture
def add_table(control_conn: psycopg.Connection) -> AddTable:
    """`add_table(control_key, **columns)` inserts a valid control row into the test database."""

    def add(control_key: str, **overrides: Any) -> int:
        return insert_table(control_conn, control_key, **overrides)

    return add


def _root_conftest() -> ModuleType:
    # tests/conftest.py holds create_database/drop_database; both conftests are module "conftest",
    # so load the root one under its own name.
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("dataloader_root_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def fresh_database(pg_admin_url: str) -> Iterator[str]:
    """A new, empty (not migrated) database; dropped afterwards."""
    root = _root_conftest()
    url = root.create_database(pg_admin_url, "dl_control_fresh")
    yield url
    root.drop_database(pg_admin_url, url)
