"""Where the worker reads its Pipes context: on Databricks (DATABRICKS_RUNTIME_VERSION set) from DBFS
(the /dbfs mount), with the bootstrap given as the wheel task's command-line parameters on an
existing cluster; elsewhere from the path the client gave."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster_pipes import encode_env_var

ROOT = Path(__file__).resolve().parents[2]


def _worker(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipes_workers.dataloader_pipe", *args],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_on_databricks_the_worker_reads_the_context_from_dbfs_given_on_the_command_line(tmp_path) -> None:
    context = encode_env_var({"path": f"{tmp_path}/context.json"})
    messages = encode_env_var({"path": f"{tmp_path}/messages"})
    ran = _worker(
        ["--dagster-pipes-context", context, "--dagster-pipes-messages", messages],
        {"DATABRICKS_RUNTIME_VERSION": "15.4"},
    )
    assert ran.returncode != 0
    assert f"/dbfs{tmp_path}/context.json" in ran.stderr  # the DBFS mount, not the local path


def test_elsewhere_the_worker_reads_the_context_from_the_path_in_its_environment(tmp_path) -> None:
    ran = _worker(
        [],
        {
            "DAGSTER_PIPES_CONTEXT": encode_env_var({"path": f"{tmp_path}/context.json"}),
            "DAGSTER_PIPES_MESSAGES": encode_env_var({"path": f"{tmp_path}/messages"}),
        },
    )
    assert ran.returncode != 0
    assert f"{tmp_path}/context.json" in ran.stderr and "/dbfs" not in ran.stderr
