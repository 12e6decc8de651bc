"""Walking a MySQL/MariaDB binlog stream (pymysqlreplication events) into one table's Changes, each at
its position `file:boundary:row` (binlog_positions.py).

The boundary moves past every commit (XID event, COMMIT/ROLLBACK query), every statement that is a
transaction of its own (DDL), and every file rotation; the row counter counts this table's changes
since the boundary. Statements inside a transaction (BEGIN, SAVEPOINT, XA …) never move it, so a
position always resumes where the server can start a dump and the rows after it decode.

Each change is dated (`Change.committed_at`, UTC, whole seconds: the binlog's resolution) by its
transaction's commit event, or by its own rows event when the read stops inside the transaction.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.event import QueryEvent, RotateEvent, XidEvent
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from pipes_workers.cdc import binlog_positions as positions
from pipes_workers.cdc.binlog_positions import BinlogPosition
from pipes_workers.cdc.capture import Change
from pipes_workers.cdc.mysql_values import binlog_row

# How far past max_changes a read goes to end the transaction it is in.
SPLIT_FACTOR = 10
EVENTS = [WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent, QueryEvent, XidEvent, RotateEvent]
_IN_TRANSACTION = re.compile(r"^\s*(BEGIN|SAVEPOINT|ROLLBACK\s+TO|RELEASE|XA)\b", re.IGNORECASE)
_TRUNCATE = re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?(?P<name>.+?)\s*;?\s*$", re.IGNORECASE | re.DOTALL)
_IDENTIFIER = re.compile(r"\s*(`(?:[^`]|``)*`|[^`.\s;]+)\s*")


@dataclass(frozen=True)
class TableOfInterest:
    """The captured table: schema, name, primary key columns, and its label for messages."""

    schema: str
    table: str
    primary_keys: Sequence[str]
    label: str
    source_types: Mapping[str, str]  # column -> DATA_TYPE (information_schema)


def drain(
    stream: BinLogStreamReader, start: BinlogPosition, of: TableOfInterest, max_changes: int, deadline: float
) -> tuple[list[Change], BinlogPosition]:
    """The table's changes after `start` until the binlog head (the stream's end) or the `deadline`
    (time.monotonic()), or once `max_changes` are read and the transaction holding the last one has
    ended (so a load applies whole source transactions) — but never more than SPLIT_FACTOR times
    `max_changes`: a transaction larger than that is cut, and the next read goes on from its next row.
    Returns the changes and the position reading stopped at."""
    changes: list[Change] = []
    boundary, seen, file = start.with_row(0), 0, start.file
    open_from = 0  # the first change of the transaction being read

    def add(op: str, values: dict[str, Any], at: int, unchanged: frozenset[str] = frozenset()) -> None:
        nonlocal seen
        seen += 1
        position = boundary.with_row(seen)
        if position > start:
            when = _utc(at)
            changes.append(Change(op, position.text(), values, unchanged, when))  # type: ignore[arg-type]

    def committed(at: int) -> None:
        """Date the transaction's changes by its commit event (until then: their statement's time)."""
        nonlocal open_from
        when = _utc(at)
        if when is not None:
            changes[open_from:] = [dataclasses.replace(c, committed_at=when) for c in changes[open_from:]]
        open_from = len(changes)

    cap = SPLIT_FACTOR * max_changes
    while time.monotonic() < deadline and len(changes) < cap:
        if len(changes) >= max_changes and seen == 0:
            break  # at a boundary: the transaction of the last change has ended
        event = stream.fetchone()
        if event is None:
            break
        if isinstance(event, RotateEvent):
            file = event.next_binlog
            found = positions.at(file, event.position)
            if found > boundary:
                boundary, seen = found, 0
        elif isinstance(event, QueryEvent) and _IN_TRANSACTION.match(_text(event.query)):
            continue
        elif isinstance(event, XidEvent | QueryEvent):
            if isinstance(event, QueryEvent) and truncates(_text(event.query), _text(event.schema), of):
                add("truncate", {}, event.timestamp)
            committed(event.timestamp)
            boundary, seen = positions.at(file, event.packet.log_pos), 0
        else:
            for op, values, unchanged in row_changes(event, of):
                if len(changes) >= cap:
                    break
                add(op, values, event.timestamp, unchanged)
    return changes, boundary.with_row(seen)


def row_changes(event: Any, of: TableOfInterest) -> list[tuple[str, dict[str, Any], frozenset[str]]]:
    """The changes of one rows event as (op, reader values, columns the image did not carry). An update
    that changes the primary key is a delete of the old key followed by an insert of the new row."""
    found: list[tuple[str, dict[str, Any], frozenset[str]]] = []
    for row in event.rows:
        if isinstance(event, UpdateRowsEvent):
            before, _ = binlog_row(
                row["before_values"], row["before_none_sources"], event.columns, of.label, of.source_types
            )
            after, unchanged = binlog_row(
                row["after_values"], row["after_none_sources"], event.columns, of.label, of.source_types
            )
            if any(before.get(k) != after.get(k) for k in of.primary_keys if k in before):
                found.append(("delete", before, frozenset()))
                found.append(("insert", after, unchanged))
            else:
                found.append(("update", after, unchanged))
        else:
            values, _ = binlog_row(
                row["values"], row["none_sources"], event.columns, of.label, of.source_types
            )
            found.append(("insert" if isinstance(event, WriteRowsEvent) else "delete", values, frozenset()))
    return found


def truncates(query: str, current_schema: str, of: TableOfInterest) -> bool:
    """Whether `query` is TRUNCATE [TABLE] of the table (`schema`.`table`, schema.table or table, the
    latter in the statement's current schema)."""
    match = _TRUNCATE.match(query)
    if not match:
        return False
    names, rest = [], match["name"]
    while rest:
        part = _IDENTIFIER.match(rest)
        if not part:
            return False
        token = part.group(1)
        names.append(token[1:-1].replace("``", "`") if token.startswith("`") else token)
        rest = rest[part.end() :]
        if rest.startswith("."):
            rest = rest[1:]
        elif rest.strip(" ;"):
            return False
        else:
            break
    if len(names) == 1:
        names.insert(0, current_schema)
    return len(names) == 2 and (names[0], names[1]) == (of.schema, of.table)


def _utc(seconds: int | None) -> datetime | None:
    """An event header's timestamp (whole seconds since the epoch) as UTC; None when absent."""
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
