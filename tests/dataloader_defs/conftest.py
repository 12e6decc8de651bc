"""Fixtures for dataloader_defs tests: a real Dagster instance (sqlite storage, queued run
coordinator) and the resources pointed at the session's control database and a tmp lake."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

# tests/ is on sys.path (rootdir conftest, prepend import mode) and holds folders named like the
# packages (tests/pipes_workers, tests/control_db): without the project root first, `pipes_workers`
# imports as an empty namespace package there. Put the root first and drop such namespace stand-ins.
ROOT = Path(__file__).resolve().parents[2]
if sys.path[0] != str(ROOT):
    sys.path.insert(0, str(ROOT))
for _name in [
    m for m in sys.modules if m.split(".")[0] in ("pipes_workers", "control_db", "dataloader_defs")
]:
    if getattr(sys.modules[_name], "__file__", None) is None:
        del sys.modules[_name]

import psycopg  # noqa: E402
import pytest  # noqa: E402
from dagster import DagsterInstance, instance_for_test  # noqa: E402
from defs_support import add_source  # noqa: E402

from dataloader_defs.defs.loader import LocalWorkers, TableLoader  # noqa: E402
from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings  # noqa: E402


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[DagsterInstance]:
    """A persistent test instance with the QueuedRunCoordinator (as in dagster.yaml)."""
    overrides = {
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": 5},
        },
        "defs_state_storage": {
            "module": "dataloader_defs.state_storage",
            "class": "InstanceDefsStateStorage",
        },
    }
    home = tmp_path / "dagster_home"
    home.mkdir()
    with instance_for_test(overrides=overrides, temp_dir=str(home)) as inst:
        yield inst


@pytest.fixture
def control_db(control_db_url: str) -> ControlDatabase:
    return ControlDatabase(url=control_db_url)


@pytest.fixture
def resources(control_db: ControlDatabase, lake_root: Path, tmp_path: Path) -> dict[str, object]:
    settings = DataloaderSettings(lake_root=str(lake_root), models_dir=str(tmp_path / "models"))
    return {
        "control_db": control_db,
        "settings": settings,
        "loader": TableLoader(control_db=control_db, settings=settings, workers=LocalWorkers()),
    }


@pytest.fixture
def source(control_conn: psycopg.Connection, source_pg_url: str) -> str:
    """The test source database registered as dbconfig `test_pg`; returns its URL."""
    add_source(control_conn, source_pg_url)
    return source_pg_url
