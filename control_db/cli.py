"""The `dataloader` command: `db upgrade`, `db downgrade REV`, `status`, `sql`, `reset`, plus plugged-in
subcommands.

Without DATALOADER_CONTROL_DB_URL every command uses the project's embedded server (the one
`make dev` started) when it is running, and the commands that write Delta tables (a plugin sets
`needs_lake=True` on its parser) without DATALOADER_LAKE_ROOT use `make dev`'s lake; it says so once
on stderr (control_db.dev_settings).

Other packages add subcommands through the entry-point group `dataloader.commands`
(`name = "module:register"`; `register(subparsers)` adds a subparser whose `func(args) -> int`
runs it), so this module imports none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from control_db import embedded
from control_db.dev_settings import use_dev_settings_when_unset
from control_db.queries import connect, source_status, table_status
from control_db.status_table import CircuitLine, circuit_line, render
from control_db.urls import control_db_url, redact

COMMANDS_GROUP = "dataloader.commands"


def _db_upgrade(args: argparse.Namespace) -> int:
    from control_db import migrate  # Alembic is slow to import: only for `db` commands

    url = control_db_url()
    before = migrate.current_revision(url)
    migrate.upgrade(url, args.revision)
    after = migrate.current_revision(url)
    where = redact(url)
    if before == after:
        print(f"{where}: already at revision {after}; nothing to do")
    else:
        print(f"{where}: upgraded from revision {before or 'base (empty)'} to {after}")
    return 0


def _db_downgrade(args: argparse.Namespace) -> int:
    from control_db import migrate

    url = control_db_url()
    before = migrate.current_revision(url)
    migrate.downgrade(url, args.revision)
    after = migrate.current_revision(url)
    print(f"{redact(url)}: downgraded from revision {before} to {after or 'base (control schema removed)'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    with connect(control_db_url(), "cli") as conn:
        rows = table_status(conn)
        tripped = [source for source in source_status(conn) if source.circuit != "closed"]
    print(render(rows))
    print(f"({len(rows)} table{'s' if len(rows) != 1 else ''})")
    if tripped:  # only sources whose circuit breaker holds their tables back
        print("\nSources whose circuit breaker is not closed:")
        print(render([circuit_line(source) for source in tripped], CircuitLine))
    return 0


def psql_command(url: str, statement: str | None) -> tuple[list[str], dict[str, str]]:
    """psql's argv and extra environment for `url`: the password travels in PGPASSWORD, never in argv."""
    params = conninfo_to_dict(url)
    password = params.pop("password", None)
    command = [embedded.psql_path(), "-v", "ON_ERROR_STOP=1", make_conninfo(**params)]
    if statement is not None:
        command += ["-X", "-c", statement]  # a one-off statement ignores ~/.psqlrc
    return command, ({"PGPASSWORD": str(password)} if password else {})


def _sql(args: argparse.Namespace) -> int:
    command, extra_env = psql_command(control_db_url(), args.statement)
    sys.stdout.flush()
    os.execve(command[0], command, {**os.environ, **extra_env})  # psql owns the terminal and Ctrl-C
    return 0  # not reached


def _reset(args: argparse.Namespace) -> int:
    from control_db.table_actions import ActionRefused, apply_to_table

    with connect(control_db_url(), "cli") as conn:
        try:
            done = apply_to_table(conn, "reset", args.control_key)
        except ActionRefused as refused:
            print(f"dataloader reset: {refused}", file=sys.stderr)
            return 1
    print(f"{done.control_key}: reset (was {done.was}); it loads on the next master-sensor tick")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the built-in subcommands and every registered plugin."""
    parser = argparse.ArgumentParser(
        prog="dataloader", description="Control-table-driven loads into Delta Lake."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    db = subparsers.add_parser("db", help="migrate the control database (DATALOADER_CONTROL_DB_URL)")
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_commands.add_parser("upgrade", help="apply migrations (no-op when up to date)")
    upgrade.add_argument("revision", nargs="?", default="head", help="target revision (default: head)")
    upgrade.set_defaults(func=_db_upgrade)
    downgrade = db_commands.add_parser("downgrade", help="revert migrations down to REV ('base' removes all)")
    downgrade.add_argument("revision", metavar="REV")
    downgrade.set_defaults(func=_db_downgrade)

    status = subparsers.add_parser("status", help="print v_table_status: status, last load, next load, lag")
    status.set_defaults(func=_status)

    sql = subparsers.add_parser(
        "sql",
        help="run STATEMENT on the control database with psql, or open a psql prompt (no psql install needed)",
    )
    sql.add_argument("statement", nargs="?", help='e.g. "SELECT * FROM dataloader.v_table_status"')
    sql.set_defaults(func=_sql)

    reset = subparsers.add_parser(
        "reset", help="clear a failed table's status, message, retries and manual review; load it now"
    )
    reset.add_argument("control_key", metavar="CONTROL_KEY")
    reset.set_defaults(func=_reset)

    _register_plugins(subparsers)
    return parser


def _register_plugins(subparsers: argparse._SubParsersAction) -> None:
    for entry_point in entry_points(group=COMMANDS_GROUP):
        try:
            entry_point.load()(subparsers)
        except Exception as exc:  # a broken plugin must not take `db upgrade` down with it
            print(f"dataloader: skipping command plugin {entry_point.name!r}: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `dataloader` command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    # Set for this process (and plugins such as `load`) so every command sees the same settings.
    use_dev_settings_when_unset(lake=bool(getattr(args, "needs_lake", False)))
    try:
        return int(args.func(args))
    except RuntimeError as exc:  # e.g. DATALOADER_CONTROL_DB_URL unset
        print(f"dataloader: {exc}", file=sys.stderr)
        return 2
    except (psycopg.OperationalError, _sqlalchemy_operational_error()) as exc:
        # Connection failures: libpq's message names host/port/database, never the password.
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"dataloader: control database unreachable: {redact(reason)}", file=sys.stderr)
        return 1


def _sqlalchemy_operational_error() -> type[Exception]:
    # The `db` commands go through SQLAlchemy (Alembic); only look it up when it is loaded.
    module = sys.modules.get("sqlalchemy.exc")
    return module.OperationalError if module else psycopg.OperationalError


def run() -> None:
    """The `dataloader` console script: `main`, then leave at once. By the time `main` returns every
    load is committed and recorded and every connection closed; the interpreter's own teardown of
    the pyarrow, delta-rs and numpy objects a load leaves would add 0.08–0.13 s to every command."""
    exit_now(main())


def exit_now(code: int) -> None:
    """Flush logging and standard streams, then end the process with `code` without teardown."""
    logging = sys.modules.get("logging")  # flushed only when something used it
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # e.g. a closed pipe: nothing left to flush into
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
