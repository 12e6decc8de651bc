"""The maintenance lifecycle, next to the load's (`lifecycle.py`): claim -> run the worker -> release.

Used by `dataloader maintain`, the Dagster maintenance job and the maintenance sensor alike:

    held = claim_table(url, "erp.public.orders", owner=run_owner(run_id))  # a short connection
    result = <compact and vacuum held.target>     # no control-database connection is held meanwhile
    release_table(url, held.claim, done=True)     # a fresh short connection

A claim holds the row's `maintenance_owner` until `maintenance_expires_at`
(DATALOADER_MAINTENANCE_CLAIM_S, default 6 hours); a load is not queued while it holds. The load
status is never touched. A claim whose owner is gone — a Dagster run that ended (the caller's
`owner_gone` says), a `dataloader maintain` process of this host that ended — or that expired is
taken over by the next claimant; `release_gone_claims` drops gone owners' claims so loads go on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from control_db.local_runs import new_local_run_id, parse_local_run
from control_db.queries.connection import connect
from control_db.queries.maintenance import (
    MaintenanceClaim,
    active_control_rows,
    claim_maintenance,
    maintenance_claims,
    maintenance_due,
    release_maintenance,
)
from control_db.queries.reads import get_control_row
from control_db.queries.rows import ControlRow

CLAIM_TTL_ENV = "DATALOADER_MAINTENANCE_CLAIM_S"
DEFAULT_CLAIM_TTL_S = 6 * 3600
RUN_OWNER_PREFIX = "run:"
COMPONENT = "maintenance"

OwnerGone = Callable[[str], bool]


@dataclass(frozen=True)
class MaintenanceTarget:
    """What the maintenance worker needs of a held row."""

    control_key: str
    destination_table: str
    load_strategy: str
    primary_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class Held:
    """A row this owner now holds, and what to maintain."""

    claim: MaintenanceClaim
    target: MaintenanceTarget


@dataclass(frozen=True)
class NotHeld:
    """A row the claim was refused for, and why (in words for a log)."""

    control_key: str
    reason: str


def claim_ttl() -> timedelta:
    """DATALOADER_MAINTENANCE_CLAIM_S (whole seconds > 0), default 6 hours."""
    raw = os.environ.get(CLAIM_TTL_ENV, "").strip()
    if not raw:
        return timedelta(seconds=DEFAULT_CLAIM_TTL_S)
    if not raw.isdigit() or int(raw) == 0:
        raise ValueError(f"{CLAIM_TTL_ENV}={raw!r} must be a whole number of seconds above 0")
    return timedelta(seconds=int(raw))


def run_owner(run_id: str) -> str:
    """The claim owner for Dagster run `run_id`."""
    return f"{RUN_OWNER_PREFIX}{run_id}"


def process_owner() -> str:
    """A claim owner naming this process (a `local-…` id, see `local_runs`)."""
    return new_local_run_id()


def local_owner_gone(owner: str) -> bool:
    """Whether `owner` names a process of this host that has ended (other owners: not known here)."""
    run = parse_local_run(owner)
    return run is not None and run.on_this_host and run.is_gone()


def maintenance_rows(url: str, control_keys: Sequence[str] | None) -> list[ControlRow]:
    """The named rows (None: every active row), in one short connection.

    Raises:
        LookupError naming a control key that has no row (before anything is claimed).
    """
    with connect(url, COMPONENT) as conn:
        if control_keys is None:
            return active_control_rows(conn)
        rows = [get_control_row(conn, key) for key in control_keys]
    missing = [key for key, row in zip(control_keys, rows, strict=True) if row is None]
    if missing:
        raise LookupError(f"no control row with control_key {', '.join(map(repr, missing))}")
    return [row for row in rows if row is not None]


def claim_table(
    url: str, control_key: str, *, owner: str, owner_gone: OwnerGone = local_owner_gone
) -> Held | NotHeld:
    """Claim one row for `owner` (taking over a claim whose owner `owner_gone` says is gone)."""
    ttl = claim_ttl()
    with connect(url, COMPONENT) as conn:
        claim = claim_maintenance(conn, control_key, owner=owner, ttl=ttl)
        row = get_control_row(conn, control_key)
        holder = row.maintenance_owner if row is not None else None
        if claim is None and holder not in (None, owner) and owner_gone(holder):
            claim = claim_maintenance(conn, control_key, owner=owner, ttl=ttl, take_over=holder)
            row = get_control_row(conn, control_key)
    if row is None:
        return NotHeld(control_key, "no control row")
    if claim is None:
        if row.last_status not in (None, "Succeeded"):
            return NotHeld(control_key, f"row is {row.last_status}; maintenance waits for it")
        return NotHeld(control_key, f"held for maintenance by {row.maintenance_owner}")
    target = MaintenanceTarget(
        control_key=row.control_key,
        destination_table=row.destination_table,
        load_strategy=row.load_strategy,
        primary_keys=tuple(row.primary_keys or ()),
    )
    return Held(claim, target)


def maintenance_hold(row: ControlRow) -> str | None:
    """Why a load cannot start on `row` because maintenance holds it (a live claim), else None —
    for a refusal that names the holder rather than the row's last load run."""
    expires = row.maintenance_expires_at
    if row.maintenance_owner is None or expires is None or expires <= datetime.now(UTC):
        return None
    return f"{row.control_key}: held for maintenance by {row.maintenance_owner} until {expires.isoformat()}"


def release_table(url: str, claim: MaintenanceClaim, *, done: bool) -> bool:
    """Drop the claim in a fresh connection; `done` stamps `last_maintenance_at`. False when it was
    taken over meanwhile (the claim had expired)."""
    with connect(url, COMPONENT) as conn:
        return release_maintenance(conn, claim, done=done)


def release_gone_claims(url: str, owner_gone: OwnerGone = local_owner_gone) -> list[str]:
    """Drop the live claims whose owner is gone (no stamp); returns their control keys."""
    released = []
    with connect(url, COMPONENT) as conn:
        for claim in maintenance_claims(conn):
            if owner_gone(claim.owner) and release_maintenance(conn, claim, done=False):
                released.append(claim.control_key)
    return released


def tables_due(url: str, *, after_loads: int, limit: int) -> list[str]:
    """Control keys due for maintenance (`maintenance_due`), in one short connection."""
    with connect(url, COMPONENT) as conn:
        return maintenance_due(conn, after_loads=after_loads, limit=limit)
