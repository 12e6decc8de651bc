"""One `dataloader load CONTROL_KEY` as a user runs it, timed: its own process, its peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed_dataloader_load(control_url: str, key: str, lake: str, env: dict[str, str] | None = None) -> dict:
    """Run `dataloader load KEY` against `control_url` and `lake` (plus `env`); its wall seconds and
    peak RSS in MB (from `wait4`: this child's own). RuntimeError with its output when it fails."""
    environ = {
        **os.environ,
        "DATALOADER_CONTROL_DB_URL": control_url,
        "DATALOADER_LAKE_ROOT": lake,
        **(env or {}),
    }
    command = Path(sys.executable).with_name("dataloader")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        process = subprocess.Popen(
            [str(command), "load", key], env=environ, stdout=out, stderr=err, text=True
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0 or ": Succeeded, " not in stdout:
        raise RuntimeError(f"dataloader load {key} failed:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    return {"seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024}
