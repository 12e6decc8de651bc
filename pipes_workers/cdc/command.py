"""`dataloader cdc-drop CONTROL_KEY`: drop a cdc row's replication slot and publication on its source.

A slot keeps the source's WAL until it is acknowledged, so a cdc row that is deactivated or deleted
must have its slot dropped — by a person, explicitly: nothing drops one silently. The command
refuses while the row is an active cdc row (its next load would then need `load_full`) unless
`--force`; for a deleted row, `--source DB_CONFIG_KEY` names the source database. Each drop is
printed and logged (logger `pipes_workers.cdc`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

import psycopg

from control_db.dev_settings import missing
from control_db.queries.reads import get_control_row, get_source_config
from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import LoadRequest, SourceConfig
from pipes_workers.cdc import capture_for
from pipes_workers.secrets import resolve_source

CONTROL_DB_ENV = "DATALOADER_CONTROL_DB_URL"
LOG = logging.getLogger("pipes_workers.cdc")


def drop_capture(
    conn_url: str, control_key: str, *, source_key: str | None = None, force: bool = False
) -> str:
    """Drop the slot/publication of `control_key`; the line that says what was dropped.

    Raises:
        ConfigurationError: the row is an active cdc row (without `force`), or its source is unknown.
    """
    with psycopg.connect(conn_url, autocommit=True, application_name="dataloader-cli") as conn:
        row = get_control_row(conn, control_key)
        if row is not None and row.is_active and row.load_strategy == "cdc" and not force:
            raise ConfigurationError(
                f"{control_key}: is an active cdc row; deactivate it (is_active = false) first, or pass "
                "--force (its next load then needs load_full)"
            )
        db_config_key = source_key or (row.db_config_key if row is not None else None)
        if db_config_key is None:
            raise ConfigurationError(f"{control_key}: no such control row; name its source with --source")
        source = get_source_config(conn, db_config_key)
    if source is None:
        raise ConfigurationError(f"{control_key}: source {db_config_key!r} not in table_control_dbconfig")
    config = SourceConfig.from_dbconfig_row(source)
    request = LoadRequest(
        control_key=control_key,
        load_strategy="cdc",
        source_schema=row.source_schema if row is not None else None,
        source_table=row.source_table if row is not None else "(deleted row)",
        destination_table=row.destination_table if row is not None else "unknown",
        source=config,
        lake_root="",
    )
    capture = capture_for(request, resolve_source(config))
    try:
        capture.drop()
    finally:
        capture.close()
    slot = getattr(capture, "slot", "the change capture position")
    line = f"{control_key}: dropped replication slot and publication {slot} on source {db_config_key!r}"
    LOG.warning(line)
    return line


def main(args: argparse.Namespace) -> int:
    """Run `dataloader cdc-drop`; 0 when dropped (or nothing was there), 1 with the reason on stderr."""
    unset = missing(CONTROL_DB_ENV)
    if unset:
        print(f"dataloader cdc-drop: {unset}", file=sys.stderr)
        return 1
    conn_url = os.environ[CONTROL_DB_ENV]
    try:
        print(drop_capture(conn_url, args.control_key, source_key=args.source, force=args.force))
    except LoadError as exc:
        print(f"dataloader cdc-drop: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `cdc-drop` subcommand to the `dataloader` CLI."""
    parser = subparsers.add_parser(
        "cdc-drop", help="drop a cdc row's replication slot and publication on its source (explicit, logged)"
    )
    parser.add_argument("control_key", metavar="CONTROL_KEY")
    parser.add_argument("--source", metavar="DB_CONFIG_KEY", help="the source of a row that no longer exists")
    parser.add_argument("--force", action="store_true", help="drop even while the row is an active cdc row")
    parser.set_defaults(func=main)
