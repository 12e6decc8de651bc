"""A local load worker ends with the process that started it (PR_SET_PDEATHSIG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# The "run process": starts a worker-like child that watches its parent as the worker entrypoint
# does, prints the child's pid, then sleeps until it is killed.
RUN_PROCESS = """
import os, subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", "from pipes_workers.parent_watch import die_with_parent; die_with_parent(); "
     "import time; print('watching', flush=True); time.sleep(120)"],
    env={**os.environ, "DATALOADER_WORKER_PARENT_PID": str(os.getpid())}, stdout=subprocess.PIPE, text=True,
)
assert child.stdout.readline().strip() == "watching"
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_worker_is_killed_when_its_run_process_is_killed_hard():
    run = subprocess.Popen(
        [sys.executable, "-c", RUN_PROCESS], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        worker = int(run.stdout.readline())
        assert _alive(worker)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(10)
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker), "the worker outlived its run process"
    finally:
        run.kill()


def test_a_worker_whose_parent_is_already_gone_ends_at_once():
    done = subprocess.run(
        [sys.executable, "-c", "from pipes_workers.parent_watch import die_with_parent; die_with_parent(); print('ran')"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), "DATALOADER_WORKER_PARENT_PID": "1"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # Its parent is this test, not pid 1: the parent it was started for is gone.
    assert done.returncode == 137 and "ran" not in done.stdout
