"""`make checks`: validate the code location, then load the demo tables and run their asset checks.

1. `dagster definitions validate -m dataloader_defs.definitions`.
2. Creates a temporary control database and demo source database on a PostgreSQL server
   (DATALOADER_CHECKS_PG_URL, else TEST_POSTGRES_URL, else the embedded server), migrates, seeds the
   six demo tables, and materialises each demo partition (the same asset code as production,
   through the Pipes worker) into a temporary lake with a temporary Dagster instance.
   With --configured it uses DATALOADER_CONTROL_DB_URL / DATALOADER_LAKE_ROOT instead and
   materialises every active control row (or those named by --key).
3. Prints one line per check (Dagster's own DEBUG events only with --verbose); exits 1 when a load fails or an ERROR-severity check fails
   (WARN-severity failures are printed, not fatal). Temporary databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from control_db.urls import libpq_url  # noqa: E402


def validate() -> bool:
    """`dagster definitions validate` on the code location (placeholder URLs: nothing is connected)."""
    env = {
        **os.environ,
        "DATALOADER_CONTROL_DB_URL": os.environ.get(
            "DATALOADER_CONTROL_DB_URL", "postgresql://x@127.0.0.1/x"
        ),
        "DATALOADER_LAKE_ROOT": os.environ.get("DATALOADER_LAKE_ROOT", "/tmp/dataloader-lake"),
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    env.pop("DAGSTER_HOME", None)
    dagster = str(Path(sys.executable).parent / "dagster")
    # Run outside the project root: dagster reads ./dagster.yaml (postgres storage, DAGSTER_PG_URL)
    # for its temporary instance, and validation needs no instance of ours.
    with tempfile.TemporaryDirectory(prefix="dataloader-validate-") as cwd:
        command = [dagster, "definitions", "validate", "-m", "dataloader_defs.definitions"]
        done = subprocess.run(command, env=env, cwd=cwd)
    return done.returncode == 0


def admin_url() -> str:
    url = os.environ.get("DATALOADER_CHECKS_PG_URL") or os.environ.get("TEST_POSTGRES_URL")
    if url:
        return libpq_url(url)
    default = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        with psycopg.connect(default, connect_timeout=3):
            return default
    except psycopg.OperationalError:
        from control_db import embedded

        return embedded.ensure_running()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


# Dagster's console logger prints every event at DEBUG (over a hundred lines for the six demo
# tables) before the summary; by default only warnings and errors show, --verbose shows them all.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def materialize_tables(
    keys: list[str], *, control_url: str, lake_root: str, verbose: bool = False
) -> list[tuple[str, bool, list]]:
    """Materialise each table's asset with a temporary instance; (key, load ok, check evaluations)."""
    from dagster import AssetKey, DagsterInstance, PreviewWarning, materialize

    if not verbose:  # Dagster's notes about its own preview APIs say nothing about the tables
        warnings.simplefilter("ignore", PreviewWarning)

    from control_db.queries import connect
    from dataloader_defs.control_snapshot import read_snapshot
    from dataloader_defs.defs.assets import build_load_assets
    from dataloader_defs.defs.loader import TableLoader, workers_from_env
    from dataloader_defs.defs.resources import ControlDatabase, DataloaderSettings

    with connect(control_url, "checks") as conn:
        rows = {row.control_key: row for row in read_snapshot(conn).rows}
    assets = build_load_assets(list(rows.values()))
    control_db = ControlDatabase(url=control_url)
    settings = DataloaderSettings(lake_root=lake_root)
    # The workers a deployment runs (DATALOADER_PIPES_CLIENT).
    loader = TableLoader(control_db=control_db, settings=settings, workers=workers_from_env())
    resources = {"control_db": control_db, "settings": settings, "loader": loader}
    outcomes = []
    with DagsterInstance.ephemeral() as instance:
        for key in keys:
            asset_key = AssetKey(rows[key].asset_path)
            result = materialize(
                [assets],
                selection=[asset_key],
                instance=instance,
                resources=resources,
                raise_on_error=False,
                run_config={} if verbose else QUIET_RUN_CONFIG,
            )
            loaded = any(e.asset_key == asset_key for e in result.get_asset_materialization_events())
            outcomes.append((key, loaded, result.get_asset_check_evaluations()))
    return outcomes


def report(outcomes: list[tuple[str, bool, list]]) -> bool:
    """Print the results; True when every load succeeded and no ERROR check failed."""
    from dagster import AssetCheckSeverity

    ok = True
    for key, loaded, evaluations in outcomes:
        print(f"{key}: load {'ok' if loaded else 'FAILED'}")
        ok &= loaded
        for evaluation in evaluations:
            fatal = not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
            ok &= not fatal
            status = "pass" if evaluation.passed else ("FAIL" if fatal else "warn")
            details = ", ".join(
                f"{k}={getattr(v, 'value', v)}" for k, v in evaluation.metadata.items() if k != "description"
            )
            print(f"    {status:4} {evaluation.check_name}: {details}")
    return ok


def run_demo_checks(verbose: bool = False) -> bool:
    from control_db.migrate import upgrade
    from dataloader_defs import demo

    admin = admin_url()
    suffix = uuid.uuid4().hex[:8]
    names = [f"dl_checks_control_{suffix}", f"dl_checks_source_{suffix}"]
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    control_url, source_url = (with_database(admin, n) for n in names)
    try:
        upgrade(control_url)
        demo.seed_source(source_url)
        keys = demo.seed_control(control_url, source_url)
        with tempfile.TemporaryDirectory(prefix="dataloader-checks-") as lake:
            return report(materialize_tables(keys, control_url=control_url, lake_root=lake, verbose=verbose))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run_configured_checks(selected: list[str], verbose: bool = False) -> bool:
    from control_db import queries
    from control_db.urls import control_db_url

    url = control_db_url()
    lake_root = os.environ.get("DATALOADER_LAKE_ROOT")
    if not lake_root:
        raise SystemExit("--configured needs DATALOADER_LAKE_ROOT")
    with queries.connect(url, "checks") as conn:
        keys = selected or queries.active_control_keys(conn)
    return report(materialize_tables(keys, control_url=url, lake_root=lake_root, verbose=verbose))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/checks.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--configured", action="store_true", help="use DATALOADER_CONTROL_DB_URL and the real lake"
    )
    parser.add_argument("--key", action="append", default=[], help="control_key to check (with --configured)")
    parser.add_argument("--skip-validate", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print Dagster's DEBUG events of every load")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    if not args.skip_validate and not validate():
        print("definitions validate failed", file=sys.stderr)
        return 1
    ok = run_configured_checks(args.key, args.verbose) if args.configured else run_demo_checks(args.verbose)
    print("checks passed" if ok else "checks FAILED (a load failed or an ERROR-severity check failed)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
