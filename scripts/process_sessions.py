"""Process sessions of the Celery deployment's processes: who belongs to one, and stopping all of it.

Every process `celery_hosts.py` starts leads its own session (`start_new_session=True`), and whatever
it starts — Celery pool processes, Pipes workers, Dagster's `dagster api grpc` code servers — stays
in that session unless it calls setsid itself. So a session id names everything one "host" runs,
and stopping is: signal every member, wait, SIGKILL what is left, and check that nothing is.
Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable
from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def session_members(session: int) -> list[int]:
    """Live (not zombie) processes whose session id is `session`."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # fields[0] is the state, fields[3] the session id (proc(5): stat fields 3 and 6)
        if fields and fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(entry))
    return sorted(members)


def command_line(pid: int) -> str:
    """The process's command line ('' when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def signal_sessions(sessions: Iterable[int], sig: int) -> None:
    """Send `sig` to every member of every session."""
    for session in sessions:
        for pid in session_members(session):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def stop_sessions(sessions: list[int], grace_s: float = 20.0) -> list[int]:
    """SIGTERM every member, SIGKILL those still there after `grace_s`; returns the pids that
    survived even that (empty when everything is gone)."""
    signal_sessions(sessions, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(session_members(s) for s in sessions):
        time.sleep(0.2)
    signal_sessions(sessions, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = [pid for s in sessions for pid in session_members(s)]
        if not left:
            return []
        time.sleep(0.2)
    return left
