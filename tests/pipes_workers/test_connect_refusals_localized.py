"""A PostgreSQL server that speaks German at startup: its refusals keep their SQLSTATE (issue 23).

Startup refusals are written in the server's own `lc_messages` language (per-database and per-role
settings, and a client's `options`, apply only after startup), so this needs a server of its own:
a private PostgreSQL (the system's binaries, a data directory and port of its own, stopped
afterwards) whose messages are German through gettext's LANGUAGE — the machine has no German
locale, and a C.UTF-8 `lc_messages` lets LANGUAGE choose the catalog. Skipped where there are no
server binaries or no German catalog. Before the fix every code here was None (the English texts
of libpq_connect_errors.py did not match)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from dataloader_contract.errors import LoadError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import open_reader

PASSWORD = "richtig-geheim"


@dataclass(frozen=True)
class GermanServer:
    port: int
    names: dict[str, str]


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(found[0]).parent if found else None


def _has_german_catalog(bin_dir: Path) -> bool:
    share = subprocess.run([bin_dir / "pg_config", "--localedir"], capture_output=True, text=True)
    roots = [share.stdout.strip(), "/usr/share/locale"] if share.returncode == 0 else ["/usr/share/locale"]
    return any(glob.glob(f"{root}/de/LC_MESSAGES/postgres-*.mo") for root in roots if root)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def german_server() -> Iterator[GermanServer]:
    bin_dir = _bin_dir()
    if bin_dir is None or not _has_german_catalog(bin_dir):
        pytest.skip("no PostgreSQL server binaries with a German message catalog on this machine")
    owner = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to run a private server as")
    as_user = ["runuser", "-u", "postgres", "--"] if owner else []
    root = Path(tempfile.mkdtemp(prefix="dataloader-pg-de-"))  # not pytest's tmp: 0700 for root
    data, port = root / "data", _free_port()
    names = {"user": "dl_leser", "closed": "dl_geschlossen", "full": "dl_voll"}
    try:
        (root / "pw").write_text(PASSWORD)
        if owner:
            for path in (root, root / "pw"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        subprocess.run(
            [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--locale=C.UTF-8",
             "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={root / 'pw'}"],
            check=True, capture_output=True,
        )  # fmt: skip
        subprocess.run(
            [*as_user, "env", "LANGUAGE=de", str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"),
             "-w", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
            check=True, capture_output=True,
        )  # fmt: skip
        with psycopg.connect(
            host=str(root), port=port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE ROLE {names['user']} LOGIN PASSWORD '{PASSWORD}'")
            c.execute(f"CREATE DATABASE {names['closed']} ALLOW_CONNECTIONS false")
            c.execute(f"CREATE DATABASE {names['full']} CONNECTION LIMIT 0")
            try:
                c.execute("SELECT * FROM dl_keine_tabelle")
            except psycopg.errors.UndefinedTable as exc:
                if "existiert nicht" not in str(exc):
                    pytest.skip(f"the private server does not speak German: {exc}")
        yield GermanServer(port, names)
    finally:
        subprocess.run([*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def _refusal(server: GermanServer, **config: str) -> LoadError:
    params = {"host": "127.0.0.1", "port": server.port, "database": "postgres",
              "user": server.names["user"], "password": PASSWORD, **config}  # fmt: skip
    with pytest.raises(LoadError) as raised:
        open_reader(SourceConfig("pg_de", "postgresql", "literal", params)).close()
    return raised.value


def test_a_german_servers_startup_refusals_keep_their_sqlstate(german_server: GermanServer) -> None:
    names = german_server.names
    cases = {
        "missing database": ({"database": "dl_keine_datenbank"}, "3D000", "permanent", "existiert nicht"),
        "wrong password": ({"password": "falsch"}, "28P01", "permanent", "Passwort-Authentifizierung"),
        "closed database": ({"database": names["closed"]}, "55000", "permanent", "Verbindungen"),
        "connection limit reached": ({"database": names["full"]}, "53300", "transient", "Verbindungen"),
    }
    for name, (config, code, kind, german) in cases.items():
        error = _refusal(german_server, **config)
        assert (error.code, error.kind) == (code, kind), (name, error)
        assert german in error.message and "\n" not in error.message, (name, error.message)
        assert PASSWORD not in error.message and "falsch" not in error.message


def test_query_errors_after_the_connect_read_as_before(german_server: GermanServer) -> None:
    """The verbose handshake is undone once connected: a query's error has no code or LOCATION."""
    from pipes_workers.sources.postgres_connect import connect

    conn = connect(
        host="127.0.0.1", port=german_server.port, dbname="postgres", user="postgres", password=PASSWORD
    )
    with conn, pytest.raises(psycopg.errors.UndefinedTable) as raised:
        conn.execute("SELECT * FROM dl_keine_tabelle")
    assert str(raised.value).startswith("Relation »dl_keine_tabelle« existiert nicht"), raised.value
    assert "LOCATION" not in str(raised.value)
