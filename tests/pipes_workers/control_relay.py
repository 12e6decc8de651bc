"""A TCP relay in front of the real control database that a test can take down and bring back.

Down, it cuts every relayed connection and answers each new one by closing it at once (the client
sees "server closed the connection unexpectedly", as during a restart or failover) and counts
those refusals; up again, it relays to the server as before.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from urllib.parse import urlsplit, urlunsplit


class ControlRelay:
    """Relays 127.0.0.1:<port> to the server of `url`; `url_through()` is `url` via the relay."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._url = parts
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._down = False
        self.refused = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url_through(self) -> str:
        """The database URL with the relay's port in place of the server's."""
        netloc = self._url.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(self._url._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))

    def down(self) -> None:
        """Cut every relayed connection and refuse new ones until `up()`."""
        with self._lock:
            self._down = True
            for sock in self._open:
                _close(sock)
            self._open.clear()

    def up(self) -> None:
        """Relay new connections again."""
        with self._lock:
            self._down = False

    def wait_refused(self, count: int, *, timeout_s: float) -> bool:
        """Whether `count` connections were refused within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.refused < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.refused >= count

    def close(self) -> None:
        """Stop listening and cut everything."""
        self.down()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._down:
                    self.refused += 1
                    _close(client)
                    continue
            server = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
