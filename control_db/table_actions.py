"""Actions a person takes on control rows — pause, resume, reset, force a full reload, load now —
shared by `dataloader reset` and the Dagster UI's action jobs, so both follow the same rules.

Each action is one guarded statement (the README's SQL recipes; reset is `queries.reset.reset_table`)
and refuses what that statement would not change: an unknown key, or a row a run holds (Queued or In
Progress) for reset, force full reload and load now. `apply_to_tables` runs an action over several
rows in one transaction: every row changes, or (on a refusal) none does. The connection's
`application_name` is what `table_control_history.change_source` records.

Source-level actions (opening / closing a source's circuit by hand) are locked transitions in
`control_db.queries.circuit_by_hand` (`open_by_hand`, `close_by_hand`), run by `defs/circuit_action_jobs.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import psycopg

from control_db.local_runs import fail_dead_local_runs
from control_db.queries import get_control_row
from control_db.queries.reset import reset_table

TableAction = Literal["pause", "resume", "reset", "force_full_reload", "load_now"]
TABLE_ACTIONS: tuple[TableAction, ...] = get_args(TableAction)

_HELD = "coalesce(last_status, '') NOT IN ('Queued', 'In Progress')"
_STATEMENTS: dict[str, str] = {
    "pause": "UPDATE dataloader.table_control SET is_active = false WHERE control_key = %s RETURNING 1",
    "resume": "UPDATE dataloader.table_control SET is_active = true WHERE control_key = %s RETURNING 1",
    "force_full_reload": "UPDATE dataloader.table_control SET load_full = true, next_load_date_time = NULL "
    f"WHERE control_key = %s AND {_HELD} RETURNING 1",
    "load_now": "UPDATE dataloader.table_control SET next_load_date_time = NULL "
    f"WHERE control_key = %s AND is_active AND {_HELD} AND coalesce(last_status, '') <> 'Failed' RETURNING 1",
}
_DONE = {
    "pause": "paused (is_active = false): the master sensor no longer queues it",
    "resume": "resumed (is_active = true): it loads when due",
    "reset": "reset: it loads on the next master-sensor tick",
    "force_full_reload": "one full reload requested: it loads on the next master-sensor tick",
    "load_now": "due now: it loads on the next master-sensor tick",
}


class ActionRefused(Exception):
    """The action changed nothing: `reason` says why, naming the table."""

    def __init__(self, control_key: str, reason: str) -> None:
        super().__init__(reason)
        self.control_key = control_key
        self.reason = reason


@dataclass(frozen=True)
class ActionDone:
    """One row an action changed: its status before and what the action did."""

    control_key: str
    action: str
    was: str
    message: str


class ActionsRefused(Exception):
    """Some rows refused the action, so none was changed; the message lists each and why."""

    def __init__(self, action: str, refused: Sequence[ActionRefused]) -> None:
        reasons = "; ".join(str(r) for r in refused)
        super().__init__(f"{action} refused for {len(refused)} table(s), nothing changed: {reasons}")
        self.refused = list(refused)


def _refusal(action: str, control_key: str, status: str | None, is_active: bool) -> str:
    if status in ("Queued", "In Progress"):
        what = {"force_full_reload": "reload it fully", "load_now": "load it"}.get(action, f"{action} it")
        return f"{control_key} is {status}; wait for its run to finish (or fail) and {what} then"
    if action == "load_now" and not is_active:
        return f"{control_key} is paused (is_active = false); resume it first"
    if action == "load_now" and status == "Failed":
        return f"{control_key} is Failed; reset it instead (a reset loads it now)"
    return f"{control_key} changed meanwhile (now {status or 'never loaded'}); try again"


def _run(conn: psycopg.Connection, action: str, control_key: str) -> bool:
    if action == "reset":
        return reset_table(conn, control_key)
    return conn.execute(_STATEMENTS[action], (control_key,)).fetchone() is not None


def apply_to_table(conn: psycopg.Connection, action: TableAction, control_key: str) -> ActionDone:
    """Run `action` on one row; raises ActionRefused (naming the key and why) when it changed nothing."""
    if action not in TABLE_ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(TABLE_ACTIONS)}")
    if action == "reset":
        fail_dead_local_runs(conn, control_key)  # a `dataloader load` whose process is gone: Failed
    row = get_control_row(conn, control_key)
    if row is None:
        raise ActionRefused(control_key, f"no control row with control_key {control_key!r}")
    if not _run(conn, action, control_key):
        current = get_control_row(conn, control_key) or row
        raise ActionRefused(
            control_key, _refusal(action, control_key, current.last_status, current.is_active)
        )
    return ActionDone(control_key, action, row.last_status or "never loaded", _DONE[action])


def apply_to_tables(
    conn: psycopg.Connection, action: TableAction, control_keys: Sequence[str], *, skip_refused: bool = False
) -> tuple[list[ActionDone], list[ActionRefused]]:
    """Run `action` on every key in one transaction. A refusal rolls all of them back and raises
    ActionsRefused, unless `skip_refused` (then the others stay changed and refusals are returned)."""
    done: list[ActionDone] = []
    refused: list[ActionRefused] = []
    with conn.transaction():
        for key in control_keys:
            try:
                with conn.transaction():  # a savepoint: a failed statement leaves the others
                    done.append(apply_to_table(conn, action, key))
            except ActionRefused as exc:
                refused.append(exc)
        if refused and not skip_refused:
            raise ActionsRefused(action, refused)
    return done, refused


def resolve_tables(
    conn: psycopg.Connection,
    *,
    control_keys: Sequence[str] = (),
    db_config_keys: Sequence[str] = (),
    destinations: Sequence[str] = (),
) -> list[str]:
    """The control keys selected by key, by source (every table of it) or by destination path (the
    asset key `bronze/erp/orders`). Raises ValueError naming every unknown key, source or path."""
    if not (control_keys or db_config_keys or destinations):
        raise ValueError("no table selected: give control_keys, db_config_keys or asset_keys")
    rows = conn.execute(
        "SELECT control_key, db_config_key, destination_table FROM dataloader.table_control "
        "WHERE control_key = ANY(%s) OR db_config_key = ANY(%s) OR destination_table = ANY(%s) "
        "ORDER BY control_key",
        (list(control_keys), list(db_config_keys), list(destinations)),
    ).fetchall()
    unknown = []
    for column, (what, names) in enumerate(
        (("control_key", control_keys), ("db_config_key", db_config_keys), ("asset key", destinations))
    ):
        found = {r[column] for r in rows}
        unknown += [f"{what} {name!r}" for name in names if name not in found]
    if unknown:
        raise ValueError(f"no control row for {', '.join(unknown)}")
    return [r[0] for r in rows]
