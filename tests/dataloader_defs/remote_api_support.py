"""A recording stand-in for a remote cluster's HTTP API (the Kubernetes API server, a Databricks
workspace) for tests that have no cluster: the real dagster-k8s / dagster-databricks clients talk to
it over HTTP; it records every request and answers with `answer(method, path)`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = Callable[[str, str], tuple[int, dict[str, Any]]]


@contextmanager
def recording_api(answer: Answer) -> Iterator[tuple[str, list[Recorded]]]:
    """(base URL, recorded requests) of a local HTTP server answering every request with `answer`."""
    recorded: list[Recorded] = []

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            recorded.append(Recorded(self.command, self.path, self.rfile.read(length) if length else b""))
            status, payload = answer(self.command, self.path)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", recorded
    finally:
        server.shutdown()
        server.server_close()
