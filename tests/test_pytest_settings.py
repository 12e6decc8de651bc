"""`make test` runs `pytest -q`: the reasons of skipped tests must still print (issue 19)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quiet_runs_still_print_why_a_test_skipped(tmp_path: Path) -> None:
    (tmp_path / "test_skips.py").write_text(
        "import pytest\n\n\ndef test_needs_a_server():\n    pytest.skip('MariaDB at 127.0.0.1:3306 is unreachable')\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_skips.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED [1] " in done.stdout and "MariaDB at 127.0.0.1:3306 is unreachable" in done.stdout, (
        done.stdout
    )
