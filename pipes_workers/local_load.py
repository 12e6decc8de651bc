"""`dataloader load CONTROL_KEY`: one load now, in-process, through the same run_load as the worker.

Registered via the entry-point group `dataloader.commands` (`load = "pipes_workers.local_load:register"`).
Walks the control row through In Progress -> Succeeded/Failed like a Dagster run launched by hand.
Environment: DATALOADER_CONTROL_DB_URL, DATALOADER_LAKE_ROOT, DATALOADER_SECRETS_DIR.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from collections.abc import Callable

from control_db.queries import (
    connect,
    get_control_row,
    get_source_config,
    mark_failed,
    mark_in_progress,
    mark_succeeded,
)
from pipes_workers.errors import ConfigurationError, LoadError
from pipes_workers.load import run_load
from pipes_workers.request import LoadRequest
from pipes_workers.result import LoadResult

LAKE_ROOT_ENV = "DATALOADER_LAKE_ROOT"
CONTROL_DB_ENV = "DATALOADER_CONTROL_DB_URL"


def load_control_key(
    conn_url: str, control_key: str, lake_root: str, *, log: Callable[[str], None] = print
) -> LoadResult:
    """Load one control row now: In Progress, run_load, then Succeeded (or Failed and re-raise).

    Args:
        conn_url: libpq URL of the control database.
        control_key: the row to load.
        lake_root: the lake root (local path or s3://…).
        log: progress sink.

    Returns:
        The LoadResult of the load.

    Raises:
        ConfigurationError when the row or its source is missing or the row is already running;
        the load's own LoadError (after marking the row Failed).
    """
    with connect(conn_url, "cli") as conn:
        row = get_control_row(conn, control_key)
        if row is None:
            raise ConfigurationError(f"no control row with control_key {control_key!r}")
        source = get_source_config(conn, row.db_config_key)
        if source is None:
            raise ConfigurationError(
                f"{control_key}: db_config_key {row.db_config_key!r} has no source config"
            )
        run_id = f"local-{uuid.uuid4().hex[:12]}"
        history_id = mark_in_progress(conn, control_key, run_id=run_id, history_id=None)
        if history_id is None:
            raise ConfigurationError(
                f"{control_key}: cannot start, the row is {row.last_status} (already running?)"
            )
        try:
            request = LoadRequest.from_control_row(
                row, source, lake_root=lake_root, run_id=run_id, history_id=history_id
            )
            result = run_load(request, log=log)
        except BaseException as exc:
            message = (
                f"{type(exc).__name__}: {exc}" if not isinstance(exc, KeyboardInterrupt) else "interrupted"
            )
            mark_failed(conn, control_key, message=message[:4000], history_id=history_id)
            raise
        mark_succeeded(
            conn,
            control_key,
            history_id=history_id,
            rows_processed=result.rows_processed,
            watermark_before=result.watermark_before,
            watermark_after=result.watermark_after,
            next_load_strategy=result.next_load_strategy,
            clear_load_full=result.load_full_done,
            message="skipped: no new rows" if result.skipped else None,
        )
        return result


def main(args: argparse.Namespace) -> int:
    """Run `dataloader load CONTROL_KEY`; 0 on success, 1 on failure (the reason on stderr)."""
    conn_url = os.environ.get(CONTROL_DB_ENV)
    lake_root = os.environ.get(LAKE_ROOT_ENV)
    missing = [name for name, value in ((CONTROL_DB_ENV, conn_url), (LAKE_ROOT_ENV, lake_root)) if not value]
    if missing:
        print(f"dataloader load: set {', '.join(missing)}", file=sys.stderr)
        return 1
    assert conn_url is not None and lake_root is not None
    try:
        result = load_control_key(conn_url, args.control_key, lake_root, log=print)
    except LoadError as exc:
        print(f"dataloader load: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    summary = "skipped (nothing new)" if result.skipped else f"{result.rows_processed:,} rows"
    print(f"{args.control_key}: Succeeded, {summary}, Delta version {result.delta_version}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `load` subcommand to the `dataloader` CLI."""
    parser = subparsers.add_parser("load", help="load one control row now, in-process, with progress")
    parser.add_argument("control_key", metavar="CONTROL_KEY")
    parser.set_defaults(func=main)
