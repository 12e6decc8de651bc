"""The worker runs from the installed package alone: the project built as a wheel, installed with
--no-deps into a fresh virtualenv that sees only this environment's third-party packages (never
the checkout), and `python -m pipes_workers.dataloader_pipe` run from a folder outside the repo —
as a Kubernetes pod or a Databricks wheel task runs it — loads a real control row's table into Delta
through a Pipes context given in its environment."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from dagster_pipes import encode_env_var
from defs_support import add_control, source_table
from deltalake import DeltaTable

from control_db.lifecycle import begin_attempt
from dataloader_contract.request import LoadRequest
from dataloader_contract.result import read_load_result

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = (
    "pyproject.toml",
    "README.md",
    "dataloader_contract",
    "control_db",
    "pipes_workers",
    "dataloader_defs",
)
UV = Path(sys.executable).parent / "uv"


def _wheel(tmp_path: Path) -> Path:
    """The project's wheel, built from a copy of its packaged files (the checkout stays clean)."""
    src = tmp_path / "src"
    for name in PACKAGED:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(path, src / name)
    subprocess.run([str(UV), "build", "--wheel", "-q", "-o", str(tmp_path / "dist"), str(src)], check=True)
    (wheel,) = (tmp_path / "dist").glob("dataloader-*.whl")
    return wheel


def _venv_with(wheel: Path, where: Path) -> Path:
    """A fresh virtualenv with `wheel` installed (--no-deps) over this environment's third-party
    packages, which it reaches by a path entry only (this environment's .pth files — the editable
    install of the checkout among them — are not processed). Returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [str(UV), "pip", "install", "-q", "--no-deps", "--python", str(python), str(wheel)], check=True
    )
    return python


def test_the_worker_loads_a_table_from_the_installed_wheel_outside_the_checkout(
    control_conn, control_db_url, source, lake_root, tmp_path
) -> None:
    source_table(
        source,
        "shipped",
        "id integer PRIMARY KEY, v text",
        "INSERT INTO shipped SELECT g, 'v' || g FROM generate_series(1, 25) g",
    )
    add_control(control_conn, "w.shipped", source_table="shipped", primary_keys=["id"])
    attempt = begin_attempt(control_db_url, "w.shipped", run_id="installed-worker-run", history_id=None)
    request = LoadRequest.from_control_row(attempt.row, attempt.source, lake_root=str(lake_root), run_id=attempt.run_id)  # fmt: skip

    venv = tmp_path / "venv"
    python = _venv_with(_wheel(tmp_path), venv)
    assert (venv / "bin" / "dataloader-pipe").exists()  # the console script a Databricks wheel task runs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    context = {
        "asset_keys": ["bronze/test/shipped"], "code_version_by_asset_key": None, "provenance_by_asset_key": None,
        "partition_key": None, "partition_key_range": None, "partition_time_window": None,
        "run_id": "installed-worker-run", "job_name": None, "retry_number": 0,
        "extras": {"load_request": request.to_dict(), "asset_key": "bronze/test/shipped"},
    }  # fmt: skip
    (elsewhere / "context.json").write_text(json.dumps(context))
    messages = elsewhere / "messages.jsonl"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(elsewhere),
        "DAGSTER_PIPES_CONTEXT": encode_env_var({"path": str(elsewhere / "context.json")}),
        "DAGSTER_PIPES_MESSAGES": encode_env_var({"path": str(messages)}),
    }
    worker = subprocess.run(
        [str(python), "-v", "-m", "pipes_workers.dataloader_pipe"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-3000:]

    sent = [json.loads(line) for line in messages.read_text().splitlines()]
    result = read_load_result(m["params"]["payload"] for m in sent if m["method"] == "report_custom_message")
    assert result is not None and result.succeeded and result.rows_written == 25, result
    table = DeltaTable(str(lake_root / "bronze" / "test" / "shipped")).to_pyarrow_table()
    assert sorted(table.column("id").to_pylist()) == list(range(1, 26))
    # Every module of the project the worker imported came from the wheel in the new virtualenv.
    ours = set(re.findall(r"['\s](/\S+/(?:pipes_workers|control_db|dataloader_defs)/\S+\.py)", worker.stderr))
    assert any(path.endswith("pipes_workers/dataloader_pipe.py") for path in ours), worker.stderr[-2000:]
    assert all(path.startswith(str(venv)) for path in ours), sorted(
        p for p in ours if not p.startswith(str(venv))
    )
