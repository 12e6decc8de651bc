"""`make checks` (scripts/checks.py): its summary is what a person reads, not Dagster's event log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_make_checks_prints_its_summary_without_dagsters_debug_events(pg_admin_url: str) -> None:
    """`make checks` printed 114 DEBUG lines before its summary (issue 19); --verbose keeps them."""
    env = {**os.environ, "DATALOADER_CHECKS_PG_URL": pg_admin_url}
    env.pop("DAGSTER_HOME", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "checks.py"), "--skip-validate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert " - DEBUG - " not in output and "PreviewWarning" not in output, output
    lines = done.stdout.splitlines()
    assert lines[-1] == "checks passed"
    assert sum(line.endswith(": load ok") for line in lines) == 6
