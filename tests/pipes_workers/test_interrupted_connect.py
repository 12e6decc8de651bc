"""A source connect interrupted (SIGINT, as a terminated run sends) while the stream's ADBC connection
opens is recorded as a transient interruption — not as the permanent "Cannot close AdbcDatabase with
open AdbcConnection" that closing the half-opened database used to raise in its place (issue 18)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from loadtest_support import PostgresSource, make_rows
from test_source_drop_mid_read import add_row, control

from dataloader_contract.request import SourceConfig
from pipes_workers.local_load import load_control_key


class InterruptingRelay:
    """A TCP relay to the real PostgreSQL server that, on its `nth` connection, sends this process
    SIGINT while that connection waits for the server, then relays it as if nothing happened."""

    def __init__(self, host: str, port: int, *, nth: int) -> None:
        self.target = (host, port)
        self.nth = nth
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted == self.nth:
                time.sleep(0.2)
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)
            server = socket.create_connection(self.target)
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listener.close()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@dataclasses.dataclass(frozen=True)
class RelayedSource:
    """The source as the control row names it: through the relay."""

    source: SourceConfig

    def config(self) -> SourceConfig:
        return self.source


@pytest.fixture
def relay(source_pg_url: str) -> Iterator[InterruptingRelay]:
    parts = urlsplit(source_pg_url)
    relay = InterruptingRelay(parts.hostname or "127.0.0.1", parts.port or 5432, nth=3)
    yield relay
    relay.close()


def test_an_interrupted_source_connect_is_transient(
    control_conn: psycopg.Connection,
    control_db_url: str,
    source_pg_url: str,
    relay: InterruptingRelay,
    lake_root: Path,
) -> None:
    direct = PostgresSource(source_pg_url)
    table = direct.events_table()
    direct.insert(table, make_rows(range(1, 4)))
    # The worker reaches the source through the relay: its catalog connection (psycopg), the ADBC
    # database (which connects to read type information), then the stream's ADBC connection —
    # the 3rd, which SIGINT interrupts while it opens.
    config = direct.config()
    relayed = dataclasses.replace(config, config={**config.config, "port": relay.port})
    key = add_row(
        control_conn, RelayedSource(relayed), table, "full", incremental_column=None, primary_keys=None
    )
    with pytest.raises(KeyboardInterrupt):
        load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)
    assert relay.accepted >= 3
    row = control(control_conn, key)
    assert (row["last_status"], row["last_error_kind"], row["last_error_code"]) == (
        "Failed",
        "transient",
        "interrupted",
    ), row
    assert "AdbcDatabase" not in row["last_status_message"]
    direct.conn.close()
