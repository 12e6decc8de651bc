"""Reset a table by hand: clear what its failures left on the row and make it due now.

The same statement as the README's reset recipe. It is guarded: a row that is Queued or In
Progress belongs to a run and is left alone.
"""

from __future__ import annotations

import psycopg

RESET = """
UPDATE dataloader.table_control
   SET last_status = NULL, last_status_message = NULL, retry_count = 0, manual_review = false,
       manual_review_reason = NULL, last_error_kind = NULL, last_error_code = NULL,
       next_load_date_time = NULL
 WHERE control_key = %s AND coalesce(last_status, '') NOT IN ('Queued', 'In Progress')
RETURNING control_key
"""


def reset_table(conn: psycopg.Connection, control_key: str) -> bool:
    """Clear status, message, retries, manual review and error kind/code; due now. False when the
    row is missing or Queued/In Progress (the guard did not match)."""
    return conn.execute(RESET, (control_key,)).fetchone() is not None
