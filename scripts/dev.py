"""`make dev`: a local DataLoader with a demo source, then `dagster dev` on http://127.0.0.1:3000.

Without DATALOADER_CONTROL_DB_URL it starts the embedded PostgreSQL (.dataloader/pgdata, port
54329) and creates the databases `dataloader` (control), `dagster` (instance storage) and
`demo_source`. It migrates the control database, seeds six demo tables (one per load strategy) with
control rows due every minute, writes them as the code location's state (Dagster's defs state
storage), starts a generator that keeps changing them, and execs `dagster dev`.
Ctrl-C (or SIGTERM to dagster dev) stops dagster and the generator; the embedded PostgreSQL keeps
running for the next start — stop it with `.venv/bin/python -m control_db.embedded stop`.

Options: --setup-only (prepare everything, print the environment, do not start dagster),
--port (UI port, default 3000; `make dev PORT=3100` passes it), --no-generator. Run links on the
control rows point at that UI (DATALOADER_DAGSTER_URL, unless you set it yourself).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from control_db import dev_settings, embedded  # noqa: E402
from control_db.urls import libpq_url, redact, sqlalchemy_url  # noqa: E402

DEFAULT_PORT = 3000

# Short sensor intervals so the demo moves within a minute (the user's values win).
DEV_INTERVALS = {
    "DATALOADER_MASTER_INTERVAL_S": "15",
    "DATALOADER_LONGQUEUED_INTERVAL_S": "60",
    "DATALOADER_LONGRUNNING_INTERVAL_S": "60",
    "DATALOADER_FAILED_INTERVAL_S": "30",
    "DATALOADER_LANDING_INTERVAL_S": "60",
    "DATALOADER_RECONCILE_INTERVAL_S": "30",
    "DATALOADER_REFRESH_INTERVAL_S": "15",
    "DATALOADER_STATE_INTERVAL_S": "15",
}


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def ensure_database(admin_url: str, name: str) -> str:
    """Create database `name` on the server of `admin_url` if missing; return its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")
    return with_database(admin_url, name)


def prepare_environment(env: dict[str, str], port: int = DEFAULT_PORT) -> dict[str, str]:
    """Databases, directories and variables for dagster dev on `port`; returns the demo source URL too (key DEMO)."""
    state = ROOT / ".dataloader"
    control_url = env.get("DATALOADER_CONTROL_DB_URL")
    if control_url:
        control_url = libpq_url(control_url)
        admin_url = with_database(control_url, "postgres")
    else:
        admin_url = embedded.ensure_running()
        print(
            f"embedded PostgreSQL at {admin_url} (stop it with: .venv/bin/python -m control_db.embedded stop)"
        )
        control_url = ensure_database(admin_url, "dataloader")
    dagster_url = env.get("DAGSTER_PG_URL") or ensure_database(admin_url, "dagster")
    demo_url = env.get("DATALOADER_DEMO_SOURCE_URL") or ensure_database(admin_url, "demo_source")

    home = Path(env.get("DAGSTER_HOME") or state / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not env.get("DAGSTER_HOME") or not (home / "dagster.yaml").exists():
        shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    result = {
        "DATALOADER_CONTROL_DB_URL": control_url,
        # dagster-postgres needs psycopg2 under SQLAlchemy 2.x (see dagster.yaml).
        "DAGSTER_PG_URL": sqlalchemy_url(dagster_url, "psycopg2"),
        "DAGSTER_HOME": str(home),
        "DATALOADER_LAKE_ROOT": env.get("DATALOADER_LAKE_ROOT") or str((state / "lake").resolve()),
        "DATALOADER_MODELS_DIR": env.get("DATALOADER_MODELS_DIR") or str((state / "models").resolve()),
        # Run links on the control rows point at the UI this script starts.
        "DATALOADER_DAGSTER_URL": env.get("DATALOADER_DAGSTER_URL") or f"http://127.0.0.1:{port}",
        "DEMO": demo_url,
    }
    for name, value in DEV_INTERVALS.items():
        result[name] = env.get(name) or value
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/dev.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setup-only", action="store_true", help="prepare and seed, do not start dagster dev"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="UI port (default 3000)")
    parser.add_argument("--no-generator", action="store_true", help="do not keep changing the demo source")
    args = parser.parse_args(argv)
    os.chdir(ROOT)

    from control_db.migrate import upgrade
    from dataloader_defs import demo

    settings = prepare_environment(dict(os.environ), args.port)
    demo_url = settings.pop("DEMO")
    env = {**os.environ, **settings}
    # A fresh shell's `dataloader load`/`maintain` find this lake for this control database.
    dev_settings.record(
        ROOT / embedded.STATE_DIR,
        control_db_url=settings["DATALOADER_CONTROL_DB_URL"],
        lake_root=settings["DATALOADER_LAKE_ROOT"],
    )
    upgrade(settings["DATALOADER_CONTROL_DB_URL"])
    print(f"control database migrated: {redact(settings['DATALOADER_CONTROL_DB_URL'])}")
    demo.seed_source(demo_url)
    keys = demo.seed_control(settings["DATALOADER_CONTROL_DB_URL"], demo_url)
    print(f"demo source {redact(demo_url)} seeded; control rows: {', '.join(keys)}")
    # The code location builds from the control-table state in Dagster's storage, never from the
    # database at load: write the current rows as the first version (control_table_sensor keeps it
    # in step from then on).
    subprocess.run([sys.executable, "-m", "dataloader_defs.state", "refresh"], env=env, check=True)
    for name in (
        "DATALOADER_CONTROL_DB_URL",
        "DAGSTER_HOME",
        "DATALOADER_LAKE_ROOT",
        "DATALOADER_MODELS_DIR",
        "DATALOADER_DAGSTER_URL",
        "DATALOADER_MASTER_INTERVAL_S",
    ):
        print(f"  {name}={redact(settings[name])}")
    if not os.environ.get("DATALOADER_CONTROL_DB_URL"):
        print(
            "  (in another shell every `.venv/bin/dataloader` command — status, sql, load, maintain — "
            "finds the embedded server and this lake by itself; for psql: export DATALOADER_CONTROL_DB_URL "
            "as above)"
        )
    if args.setup_only:
        return 0

    if not args.no_generator:
        # Same process group: Ctrl-C reaches it; --parent-pid: it exits when dagster dev (our pid) ends.
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dataloader_defs.demo",
                "generate",
                "--source-url",
                demo_url,
                "--parent-pid",
                str(os.getpid()),
            ],
            env=env,
        )
        print("demo generator started (inserts/updates every 5 s)")
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-h", "127.0.0.1", "-p", str(args.port), "-w", str(ROOT / "workspace.yaml")]
    print(f"starting: {' '.join(command)}  (UI: http://127.0.0.1:{args.port}; Ctrl-C stops it)")
    sys.stdout.flush()
    # A launcher started in the background may inherit ignored SIGINT/SIGTERM; exec keeps ignored
    # dispositions, and dagster dev would then never stop. Reset both and unblock all signals.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    os.execve(dagster, command, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
