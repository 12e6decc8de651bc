"""`dataloader discover DB_CONFIG_KEY [--schema S] [--tables PATTERN] [--apply] [--activate]`.

Reads the source's catalog (its secrets resolved in this process, as `validate` does), proposes one
control row per table (`proposal.propose`), prints the tables and the INSERT statements (a runnable
SQL script), and with `--apply` runs them in one transaction on a session named
`dataloader-discover` (the `change_source` of their table_control_history rows). Registered via the
entry-point group `dataloader.commands`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from control_db.queries import connect, get_source_config
from control_db.queries.discovery import TakenNames, apply_statements, taken_names
from control_db.urls import control_db_url
from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import SourceConfig
from pipes_workers.discovery.catalogs import catalog_for
from pipes_workers.discovery.inserts import ControlRowInsert, control_rows, statements
from pipes_workers.discovery.proposal import Proposal, propose
from pipes_workers.discovery.report import table_lines
from pipes_workers.discovery.settings import DiscoverSettings
from pipes_workers.sources import open_reader

COMPONENT = "discover"  # application_name dataloader-discover → change_source


@dataclass(frozen=True)
class Discovery:
    """What one run found: every table's proposal, the names taken before, and the new rows."""

    db_config_key: str
    proposals: list[Proposal]
    taken: TakenNames
    inserts: list[ControlRowInsert]


def discover(
    conn_url: str,
    db_config_key: str,
    *,
    schema: str | None = None,
    pattern: str | None = None,
    settings: DiscoverSettings | None = None,
    activate: bool = False,
) -> Discovery:
    """Read the source's catalog and propose rows; nothing is written. ConfigurationError when the
    source has no table_control_dbconfig row; the reader's LoadError when it cannot be read."""
    settings = settings or DiscoverSettings.from_env()
    with connect(conn_url, COMPONENT) as conn:
        source = get_source_config(conn, db_config_key)
        if source is None:
            raise ConfigurationError(f"no table_control_dbconfig row with db_config_key {db_config_key!r}")
        taken = taken_names(conn, db_config_key)
    config = SourceConfig.from_dbconfig_row(source)
    list_tables = catalog_for(config.db_type)
    with open_reader(config) as reader:
        tables = list_tables(reader, schema, pattern)
    proposals = [propose(t, settings) for t in tables]
    inserts = control_rows(
        db_config_key,
        proposals,
        registered=taken.registered,
        control_keys=taken.control_keys,
        destinations=taken.destinations,
        cron=settings.cron,
        activate=activate,
    )
    return Discovery(db_config_key, proposals, taken, inserts)


def apply(conn_url: str, discovery: Discovery) -> None:
    """Insert the discovery's rows in one transaction (all or none)."""
    with connect(conn_url, COMPONENT) as conn:
        apply_statements(conn, statements(discovery.inserts))


def script(discovery: Discovery, *, activate: bool) -> list[str]:
    """The printed output: the table of proposals as comments, then the INSERTs."""
    lines = table_lines(discovery.proposals, set(discovery.taken.registered))
    n = len(discovery.inserts)
    state = (
        "active: they load on the next master-sensor tick"
        if activate
        else "inactive: --activate to load them"
    )
    lines += ["", f"-- {n} new control row{'s' if n != 1 else ''} ({state})"]
    lines += statements(discovery.inserts)
    return lines


def main(args: argparse.Namespace, *, out: Callable[[str], None] = print) -> int:
    """Run the command: 0 on success, 1 when the source cannot be read or a row is refused."""
    try:
        settings = DiscoverSettings.from_env(
            full_below_rows=args.full_below_rows,
            backfill_above_bytes=args.backfill_above_bytes,
            chunk_size=args.chunk_size,
            cron=args.cron,
        )
        url = control_db_url()
        found = discover(
            url,
            args.db_config_key,
            schema=args.schema,
            pattern=args.tables,
            settings=settings,
            activate=args.activate,
        )
    except (ConfigurationError, LoadError) as exc:
        print(f"dataloader discover: {exc}", file=sys.stderr)
        return 1
    for line in script(found, activate=args.activate):
        out(line)
    if args.apply and found.inserts:
        try:
            apply(url, found)
        except psycopg.Error as exc:  # an INSERT-time rule: nothing was inserted
            message = (exc.diag.message_primary or str(exc)).strip()
            print(f"dataloader discover: nothing applied, a row was refused: {message}", file=sys.stderr)
            return 1
        out(
            f"-- applied {len(found.inserts)} row(s) in one transaction (change_source dataloader-{COMPONENT})"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `discover` subcommand to the `dataloader` CLI."""
    parser = subparsers.add_parser(
        "discover", help="list a source's tables and propose control rows (INSERTs; --apply runs them)"
    )
    parser.add_argument("db_config_key", metavar="DB_CONFIG_KEY")
    parser.add_argument(
        "--schema", help="the schema (database for MySQL/ClickHouse) to list; default the source's"
    )
    parser.add_argument("--tables", metavar="PATTERN", help="shell-style table-name pattern, e.g. 'order*'")
    parser.add_argument("--apply", action="store_true", help="insert the proposed rows, in one transaction")
    parser.add_argument(
        "--activate", action="store_true", help="insert them active (default: is_active false)"
    )
    parser.add_argument("--cron", help="cron of the new rows (default '0 * * * *')")
    parser.add_argument("--full-below-rows", type=int, help="full below this many estimated rows")
    parser.add_argument("--backfill-above-bytes", type=int, help="chunked_backfill above this estimated size")
    parser.add_argument("--chunk-size", type=int, help="key values per backfill chunk")
    parser.set_defaults(func=main)
