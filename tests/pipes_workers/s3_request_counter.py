"""A counting reverse proxy in front of the S3 emulator, run as its own process (deltalake holds the
GIL through some calls, so a proxy thread in the test's process could deadlock it): every request
the lake makes passes through it and is written, one line each, to a log the test counts."""

from __future__ import annotations

import http.client
import subprocess
import sys
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def request_kind(method: str, target: str) -> str:
    """LIST for a bucket listing, else the HTTP method."""
    query = parse_qs(urlsplit(target).query)
    return "LIST" if method == "GET" and "list-type" in query else method


class CountingProxy:
    """The proxy process to `upstream` (http://host:port): `url` to point the lake at, `kinds()`
    the requests since the last `reset()`."""

    def __init__(self, upstream: str, log: Path) -> None:
        self.log = log
        log.write_text("")
        self.process = subprocess.Popen(
            [sys.executable, __file__, upstream, str(log)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self._seen = 0

    def _lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def reset(self) -> None:
        self._seen = len(self._lines())

    def kinds(self) -> dict[str, int]:
        return dict(Counter(self._lines()[self._seen :]))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def serve(upstream: str, log: str) -> None:
    """Forward every request to `upstream`, appending its kind to `log`; print the proxy's URL."""
    target = urlsplit(upstream)

    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> bytes | None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def _forward(self) -> None:
            body = self._body()
            with open(log, "a") as out:
                out.write(request_kind(self.command, self.path) + "\n")
            upstream_conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            upstream_conn.request(self.command, self.path, body=body, headers=headers)
            response = upstream_conn.getresponse()
            payload = response.read()
            self.send_response_only(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() in HOP_HEADERS or (key.lower() == "content-length" and self.command != "HEAD"):
                    continue
                self.send_header(key, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            upstream_conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
