"""Start or stop the local S3 emulator (moto's server) the object-storage tests use.

`python scripts/s3_emulator.py start|stop` — binds 127.0.0.1:$DATALOADER_S3_EMULATOR_PORT (default
5055), logs to .dataloader/moto.log, keeps its pid in .dataloader/moto.pid. `start` is a no-op when
something already answers on the port; it waits until the server accepts connections.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE = ROOT / ".dataloader"
PID_FILE = STATE / "moto.pid"
HOST = "127.0.0.1"
PORT = int(os.environ.get("DATALOADER_S3_EMULATOR_PORT", "5055"))


def _answers() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((HOST, PORT)) == 0


def start() -> int:
    """Start moto_server in the background unless the port already answers."""
    if _answers():
        print(f"S3 emulator already answers on {HOST}:{PORT}")
        return 0
    STATE.mkdir(exist_ok=True)
    server = Path(sys.executable).with_name("moto_server")
    log = (STATE / "moto.log").open("ab")
    proc = subprocess.Popen(
        [str(server), "-H", HOST, "-p", str(PORT)], stdout=log, stderr=log, start_new_session=True
    )
    PID_FILE.write_text(str(proc.pid))
    for _ in range(60):
        if _answers():
            print(f"S3 emulator (moto) started on http://{HOST}:{PORT}, pid {proc.pid}")
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    print(f"S3 emulator did not start; see {STATE / 'moto.log'}", file=sys.stderr)
    return 1


def stop() -> int:
    """Stop the emulator this script started (by its recorded pid)."""
    if not PID_FILE.exists():
        print("no S3 emulator started from here")
        return 0
    pid = int(PID_FILE.read_text())
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    PID_FILE.unlink()
    print(f"S3 emulator (pid {pid}) stopped")
    return 0


if __name__ == "__main__":
    verb = sys.argv[1] if len(sys.argv) > 1 else ""
    if verb not in ("start", "stop"):
        print("usage: s3_emulator.py start|stop", file=sys.stderr)
        sys.exit(2)
    sys.exit(start() if verb == "start" else stop())
