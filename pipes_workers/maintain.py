"""Table upkeep: compact small files (z-ordered by primary key for MERGEd tables) and vacuum old ones.

`maintain_table` is the Delta work (no control database): files before/after, bytes removed. The
`dataloader maintain CONTROL_KEY|--all` command (entry-point group `dataloader.commands`) claims
each row first (`control_db.maintenance_lifecycle`: a NULL/Succeeded row that no load can queue
while the claim holds), so maintenance never races a load of the same table: a compaction
committed under a running MERGE would fail that load's commit, and a vacuum could delete the files a running load has written but
not yet committed. Rows that are Queued, In Progress or Failed are skipped and say so.

Settings: DATALOADER_VACUUM_RETENTION_HOURS (default 168; never below the table's
`delta.deletedFileRetentionDuration`, Delta's safe minimum, 7 days unless the table says otherwise),
DATALOADER_MAINTENANCE_Z_ORDER (`on` default / `off`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence

from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import table_uri
from dataloader_contract.vocabulary import MERGE_STRATEGIES
from pipes_workers.delta_settings import target_file_bytes
from pipes_workers.env_settings import whole_number
from pipes_workers.lake.session import DeltaSession
from pipes_workers.maintenance_request import MaintenanceRequest, MaintenanceResult
from pipes_workers.storage import lake_storage_options

RETENTION_ENV = "DATALOADER_VACUUM_RETENTION_HOURS"
DEFAULT_RETENTION_HOURS = 168
Z_ORDER_ENV = "DATALOADER_MAINTENANCE_Z_ORDER"
# Strategies whose loads MERGE on the primary key: clustering by it lets a merge skip files.


def retention_hours() -> int:
    """DATALOADER_VACUUM_RETENTION_HOURS (non-negative integer), default 168."""
    return whole_number(RETENTION_ENV, DEFAULT_RETENTION_HOURS, unit="hours")


def z_order_columns(request: MaintenanceRequest) -> tuple[str, ...]:
    """The primary keys for a MERGEd table (unless DATALOADER_MAINTENANCE_Z_ORDER=off), else ()."""
    setting = os.environ.get(Z_ORDER_ENV, "on").strip().lower()
    if setting not in ("on", "off"):
        raise ConfigurationError(f"{Z_ORDER_ENV}={setting!r} must be on or off")
    if setting == "off" or request.load_strategy not in MERGE_STRATEGIES:
        return ()
    return request.primary_keys


def maintain_table(request: MaintenanceRequest, *, log: Callable[[str], None] = print) -> MaintenanceResult:
    """Compact (z-order for MERGEd tables) and vacuum one Delta table; the caller holds the row.

    Returns:
        MaintenanceResult with file counts and bytes before/after and what vacuum removed;
        `skipped` says why when the table does not exist yet.
    """
    started = time.monotonic()
    destination = DeltaSession(
        table_uri(request.lake_root, request.destination_table),
        storage_options=lake_storage_options(request.lake_root),
        target_file_size=target_file_bytes(request.load_strategy),
    )
    before = destination.files()
    if before is None:
        return MaintenanceResult(request.control_key, skipped="no Delta table yet")
    hours = retention_hours()
    z_order_by = z_order_columns(request)
    how = f"z-ordering by {', '.join(z_order_by)}" if z_order_by else "compacting"
    log(f"{request.control_key}: {how} {before.files} files ({before.bytes:,} bytes) of {destination.uri}")
    destination.compact(z_order_by=z_order_by)
    vacuumed = destination.vacuum(hours)
    after = destination.files()
    assert after is not None
    result = MaintenanceResult(
        control_key=request.control_key,
        files_before=before.files,
        files_after=after.files,
        bytes_before=before.bytes,
        bytes_after=after.bytes,
        files_removed=vacuumed.files_removed,
        bytes_removed=vacuumed.bytes_removed,
        retention_hours=vacuumed.retention_hours,
        z_order_by=z_order_by,
        seconds=round(time.monotonic() - started, 3),
    )
    log(
        f"{request.control_key}: {result.files_before} -> {result.files_after} files; vacuum (retention "
        f"{result.retention_hours} h) removed {result.files_removed} files, {result.bytes_removed:,} bytes"
    )
    return result


def maintain_control_keys(
    conn_url: str, control_keys: Sequence[str] | None, lake_root: str, *, log: Callable[[str], None] = print
) -> list[MaintenanceResult]:
    """Maintain the named rows (None: every active row), each under its maintenance claim
    (`control_db.maintenance_lifecycle`); no control-database connection is open while a table is
    compacted and vacuumed.

    Raises:
        ConfigurationError for a named control key that does not exist or a bad claim setting; a
        table's LoadError after its claim was released (the other tables are done first).
    """
    from control_db import maintenance_lifecycle as lifecycle

    try:
        lifecycle.claim_ttl()  # a bad DATALOADER_MAINTENANCE_CLAIM_S fails before any row is read
        rows = lifecycle.maintenance_rows(conn_url, control_keys)
    except (LookupError, ValueError) as exc:
        raise ConfigurationError(str(exc)) from None
    owner = lifecycle.process_owner()
    results: list[MaintenanceResult] = []
    failures: list[LoadError] = []
    for row in rows:
        held = lifecycle.claim_table(conn_url, row.control_key, owner=owner)
        if isinstance(held, lifecycle.NotHeld):
            log(f"{row.control_key}: skipped: {held.reason}")
            results.append(MaintenanceResult(row.control_key, skipped=held.reason))
            continue
        try:
            results.append(maintain_table(MaintenanceRequest.for_target(held.target, lake_root), log=log))
        except LoadError as exc:
            failures.append(exc)
            log(f"{row.control_key}: maintenance failed: {type(exc).__name__}: {exc}")
            lifecycle.release_table(conn_url, held.claim, done=False)
            continue
        lifecycle.release_table(conn_url, held.claim, done=True)
    if failures:
        raise failures[0]
    return results


def main(args: argparse.Namespace) -> int:
    """Run `dataloader maintain CONTROL_KEY|--all`; 0 on success, 1 on failure."""
    from control_db.dev_settings import LAKE_ROOT_ENV, missing
    from control_db.urls import CONTROL_DB_URL_ENV

    unset = missing(CONTROL_DB_URL_ENV, LAKE_ROOT_ENV)
    if unset:
        print(f"dataloader maintain: {unset}", file=sys.stderr)
        return 1
    conn_url, lake_root = os.environ[CONTROL_DB_URL_ENV], os.environ[LAKE_ROOT_ENV]
    if bool(args.all) == bool(args.control_key):
        print("dataloader maintain: give one CONTROL_KEY or --all", file=sys.stderr)
        return 1
    try:
        maintain_control_keys(conn_url, None if args.all else [args.control_key], lake_root)
    except LoadError as exc:
        print(f"dataloader maintain: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `maintain` subcommand to the `dataloader` CLI."""
    parser = subparsers.add_parser("maintain", help="compact and vacuum Delta tables (one row or --all)")
    parser.add_argument("control_key", metavar="CONTROL_KEY", nargs="?")
    parser.add_argument("--all", action="store_true", help="every active control row")
    parser.set_defaults(func=main, needs_lake=True)
