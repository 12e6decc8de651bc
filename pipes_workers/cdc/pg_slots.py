"""PostgreSQL log positions (LSNs), slot names, reading a slot within a time bound, and the row
changes of one pgoutput message."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import psycopg

from pipes_workers.cdc import pgoutput

_NAME_LIMIT = 63


def lsn_int(position: str) -> int:
    """A pg_lsn text `XXXXXXXX/XXXXXXXX` as its 64-bit number."""
    high, _, low = position.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


def lsn_text(value: int) -> str:
    """A 64-bit LSN as pg_lsn text."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def slot_name(control_key: str) -> str:
    """The slot and publication name of a control row: lower-case letters, digits and `_`, <= 63."""
    digest = hashlib.sha256(control_key.encode()).hexdigest()[:8]
    stem = re.sub(r"[^a-z0-9_]+", "_", control_key.lower()).strip("_")
    return f"dataloader_{stem}"[: _NAME_LIMIT - 9] + f"_{digest}"


_PEEK = (
    "SELECT lsn::text, data FROM pg_logical_slot_peek_binary_changes(%s, %s::pg_lsn, %s, "
    "'proto_version', '1', 'publication_names', %s)"
)


def peek_changes(
    conn: psycopg.Connection, slot: str, upto: str, max_changes: int, max_seconds: float
) -> tuple[list[tuple[str, bytes]], int] | None:
    """The slot's messages up to `upto` (publication = the slot's name), at most about `max_changes`
    (whole transactions), within `max_seconds`: (rows, the change bound used). A decoding that runs
    out of time is tried again with a tenth of the changes in the time left (half of it, each
    time); None when even one change does not fit."""
    budget, bound = max_seconds, max_changes
    while True:
        share = budget / 2 if bound > 1 else budget
        try:
            conn.execute(f"SET statement_timeout = {max(1, int(share * 1000))}")
            return conn.execute(_PEEK, (slot, upto, bound, slot)).fetchall(), bound
        except psycopg.errors.QueryCanceled:
            if bound == 1:
                return None
            budget, bound = budget - share, max(1, bound // 10)
        finally:
            conn.execute("SET statement_timeout = 0")


RowChange = tuple[str, dict[str, Any], frozenset[str], bool]


def row_changes(
    relation: pgoutput.Relation, message: pgoutput.Message, keys: Sequence[str]
) -> list[RowChange]:
    """The (op, values, unchanged, moved) changes one Insert/Update/Delete message makes; an update
    that changed the key is a delete of the old key, then the update (`moved`: its unchanged TOAST
    values are under the old key in Delta, so the capture reads them from the source)."""
    found: list[RowChange] = []
    moved = False
    new, unchanged = pgoutput.row(relation, message.new) if message.new is not None else ({}, frozenset())
    if message.old is not None:
        old, _ = pgoutput.row(relation, message.old)
        if not message.old_is_key and unchanged:  # REPLICA IDENTITY FULL: the old row has them
            carried = {c: old[c] for c in unchanged if c in old}
            new, unchanged = {**new, **carried}, frozenset(unchanged - carried.keys())
        if message.tag == "D" or any(k in new and old.get(k) != new[k] for k in keys):
            found.append(("delete", old, frozenset(), False))
            moved = message.tag == "U"
    if message.new is not None:
        found.append(("insert" if message.tag == "I" else "update", new, unchanged, moved))
    return found
