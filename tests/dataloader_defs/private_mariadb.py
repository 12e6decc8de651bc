"""A private MariaDB server for tests that stop and start their source mid-test: its own data
directory under /tmp/breaker-*, its own port and socket. Never the shared server on 3306."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

PORTS = range(7600, 7700)


def free_port(ports: range = PORTS) -> int:
    """The first port of `ports` nothing listens on (127.0.0.1)."""
    for port in ports:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


class PrivateMariaDB:
    """`mariadbd` on 127.0.0.1:`port` with a fresh data directory; stop() and start() at will."""

    def __init__(self, port: int | None = None) -> None:
        if shutil.which("mariadbd") is None and not Path("/usr/sbin/mariadbd").exists():
            raise RuntimeError("mariadbd is not installed")
        self.base = Path(tempfile.mkdtemp(prefix="breaker-maria-", dir="/tmp"))
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.base / 'data'}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True, timeout=180,
        )  # fmt: skip

    def connect(self, database: str | None = None) -> pymysql.connections.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            database=database,
            autocommit=True,
            connect_timeout=3,
        )

    def start(self, timeout_s: float = 120) -> None:
        """Start the server and wait until it answers."""
        self.process = subprocess.Popen(
            [shutil.which("mariadbd") or "/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.base / 'data'}",
             f"--port={self.port}", f"--socket={self.base / 'mysqld.sock'}", "--bind-address=127.0.0.1",
             f"--pid-file={self.base / 'mysqld.pid'}", f"--log-error={self.base / 'error.log'}", "--user=root",
             "--skip-grant-tables", "--skip-name-resolve", "--innodb-buffer-pool-size=32M"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.connect().close()
                return
            except pymysql.err.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.base / "error.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"private mariadbd on port {self.port} did not start: {log}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (SIGTERM, this process only) and wait until it has exited."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=120)
        self.process = None

    def remove(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
