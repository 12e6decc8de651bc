"""Why a table is not loading: the rows that are paused, in manual review, Failed or waiting for a retry, with the reason
a person needs (what `table_state_monitor` shows on each table's asset)."""

from __future__ import annotations

import hashlib
from dataclasses import astuple, dataclass

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class NotLoading:
    """A row the master sensor will not queue, and why."""

    control_key: str
    destination_table: str
    is_active: bool
    last_status: str | None
    manual_review: bool
    manual_review_reason: str | None
    last_status_message: str | None
    last_error_kind: str | None
    last_error_code: str | None
    retry_count: int
    max_retries: int

    @property
    def state(self) -> str:
        """`paused`, `manual review`, `failed` (awaiting its retry analysis) or `retrying` (a retry
        is scheduled after a failure)."""
        if not self.is_active:
            return "paused"
        if self.manual_review:
            return "manual review"
        return "failed" if self.last_status == "Failed" else "retrying"

    @property
    def reason(self) -> str:
        """One line a person reads first: the review reason, else the last message."""
        if self.state == "paused":
            return "is_active = false (pause); resume it to load again"
        return self.manual_review_reason or self.last_status_message or "no message recorded"

    def digest(self) -> str:
        """Changes whenever anything shown about the row changes."""
        return hashlib.md5(repr(astuple(self)).encode()).hexdigest()[:16]


_SQL = """
SELECT control_key, destination_table, is_active, last_status, manual_review, manual_review_reason,
       last_status_message, last_error_kind, last_error_code, retry_count, max_retries
FROM dataloader.table_control
WHERE NOT is_active OR last_status = 'Failed' OR (last_status IS NULL AND retry_count > 0)
ORDER BY control_key
"""


def tables_not_loading(conn: psycopg.Connection) -> list[NotLoading]:
    """Every paused, Failed (manual review or not) or retry-scheduled row, by control_key."""
    with conn.cursor(row_factory=class_row(NotLoading)) as cur:
        return cur.execute(_SQL).fetchall()
