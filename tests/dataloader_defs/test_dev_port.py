"""`make dev PORT=…`: the Makefile passes the port to scripts/dev.py, which points run links at that UI."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dev_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dataloader_dev_script", ROOT / "scripts" / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env(control_db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    # Every database named: prepare_environment creates none and starts no server.
    return {
        "DATALOADER_CONTROL_DB_URL": control_db_url,
        "DAGSTER_PG_URL": control_db_url,
        "DATALOADER_DEMO_SOURCE_URL": control_db_url,
        "DAGSTER_HOME": str(tmp_path / "home"),
        **extra,
    }


def test_make_dev_passes_port_through() -> None:
    planned = subprocess.run(
        ["make", "-n", "dev", "PORT=3100"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts/dev.py --port 3100" in planned
    default = subprocess.run(
        ["make", "-n", "dev"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "scripts/dev.py" in default and "--port" not in default


def test_run_links_follow_the_port(control_db_url: str, tmp_path: Path) -> None:
    settings = _dev_script().prepare_environment(_env(control_db_url, tmp_path), 3141)
    assert settings["DATALOADER_DAGSTER_URL"] == "http://127.0.0.1:3141"


@pytest.mark.parametrize("port", [3000, 3142])
def test_a_dagster_url_the_user_set_wins(control_db_url: str, tmp_path: Path, port: int) -> None:
    env = _env(control_db_url, tmp_path, DATALOADER_DAGSTER_URL="https://dagster.example.com")
    settings = _dev_script().prepare_environment(env, port)
    assert settings["DATALOADER_DAGSTER_URL"] == "https://dagster.example.com"
