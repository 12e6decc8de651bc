"""A local load worker ends with the run that started it.

A run killed hard (SIGKILL after its termination grace, a Celery worker host going down) cannot stop
its workers; on Linux the kernel can: the launcher sets DATALOADER_WORKER_PARENT_PID, and the worker
asks for SIGKILL when its parent ends (PR_SET_PDEATHSIG). A forked worker's parent is the run's fork
server, which itself ends with the run. A killed worker leaves no half-written commit (every load is
one Delta commit), so this is as safe as the kill -9 the tests already inflict.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "DATALOADER_WORKER_PARENT_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Ask for SIGKILL when the parent ends; end now when it already has. No-op off Linux, and for a
    worker not started by the local launcher (no DATALOADER_WORKER_PARENT_PID)."""
    expected = os.environ.get(PARENT_ENV, "").strip()
    if not expected or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        return  # not permitted here: the launcher's own interruption remains
    # The parent may have ended before the request: then this process was re-parented already.
    # "fork-server": a forked worker, whose parent is the fork server (ended: re-parented to init).
    parent = os.getppid()
    if (expected.isdigit() and parent != int(expected)) or (not expected.isdigit() and parent == 1):
        os._exit(137)
