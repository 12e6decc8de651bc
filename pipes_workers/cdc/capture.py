"""The interface between the cdc strategy and a database's change log (docs: CDC_INTERFACE).

A capture reads one source table's changes from the log in log order; the strategy applies them to
Delta and acknowledges the position only after its commit. Positions are text; each capture's
`position_key` orders them (PostgreSQL: the LSN; MySQL/MariaDB: binlog file index, then offset).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import pyarrow as pa

ChangeOp = Literal["insert", "update", "delete", "truncate"]


@dataclass(frozen=True)
class Change:
    """One row change read from the log, in log order."""

    op: ChangeOp
    position: str  # the change's log position as text (see Position rules)
    values: dict[str, Any]  # insert/update: the new row; delete: at least the key columns; truncate: {}
    # Columns the log did not carry (PG unchanged TOAST): keep Delta's.
    unchanged: frozenset[str] = frozenset()
    # When the source committed the change (UTC), when the log says: PostgreSQL's Commit message
    # (microseconds), the binlog's XID event (seconds). History tables date versions by it.
    committed_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """A consistent initial read: rows as Arrow batches (the reader's own type map) and the log position
    they are consistent with — every change after `position` is in the log, none before is missing."""

    position: str
    batches: Iterator[pa.RecordBatch]


@dataclass(frozen=True)
class ChangeBatch:
    """What one `read_changes` returns."""

    changes: list[Change]  # in log order, all with position > the `after` asked for
    end_position: str  # the position to commit (>= every change's position; may advance with no changes)
    lag_bytes: int | None  # bytes of log the source retains for us (PG: current WAL - slot restart_lsn;
    # MySQL: distance from our position to the binlog head, in bytes across files)


class ChangeCapture(ABC):
    """Reads one source table's changes from the database log. Built from the LoadRequest + the resolved
    connection settings; one instance per load; `close()` always called."""

    # The table read's schema (the reader's column names and Arrow types), set by the strategy
    # before `start_snapshot`: the snapshot's batches have exactly this schema.
    table_schema: pa.Schema = pa.schema([])

    @staticmethod
    @abstractmethod
    def position_key(position: str) -> tuple[int, ...]:
        """A sort key for a position of this capture's log."""

    @abstractmethod
    def has_position(self, position: str) -> bool:
        """True when the log still holds everything after `position` (slot exists / binlog not purged).
        False -> the strategy raises ConfigurationError telling to run load_full."""

    @abstractmethod
    def start_snapshot(self) -> Snapshot:
        """Create (or recreate) the slot / take the binlog position and read the whole table consistently."""

    @abstractmethod
    def read_changes(self, after: str, max_changes: int, max_seconds: float) -> ChangeBatch:
        """Changes strictly after `after`, up to the bound, for this table only."""

    @abstractmethod
    def acknowledge(self, position: str) -> None:
        """Tell the source it may discard the log up to `position` (called ONLY after the Delta commit)."""

    @abstractmethod
    def to_arrow(self, rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
        """Rows (Change.values) as Arrow with the table read's schema: identical values to a full load."""

    @abstractmethod
    def drop(self) -> None:
        """Drop the slot / forget the position (explicit, logged action for a deactivated/deleted row)."""

    def lag_bytes(self) -> int | None:
        """Bytes of log the source retains for this capture now (after an acknowledgement); None
        when the capture cannot tell (the strategy then reports the ChangeBatch's)."""
        return None

    def close(self) -> None:  # noqa: B027  (optional hook: captures without connections need nothing)
        """Release connections."""
