"""The cdc initial snapshot of a MySQL/MariaDB table: its rows read in one consistent transaction
together with the binlog position that transaction sees, so that every commit after the position is in
the binlog and none before it is missing from the rows.

- MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT` and, inside it, the status variables
  `binlog_snapshot_file` / `binlog_snapshot_position` — the binlog position of exactly that snapshot.
  No lock is taken.
- MySQL (no such status variables): `FLUSH TABLES WITH READ LOCK`, the consistent snapshot, `SHOW
  MASTER STATUS` (`SHOW BINARY LOG STATUS` on 8.4), `UNLOCK TABLES` — as mysqldump
  --single-transaction --master-data does; writes wait for the moment between the lock and the unlock.

The rows are read on a MySQLReader's own session (UTC, utf8mb4) with its own SELECT (sources/mysql.py:
decimals and times as text, BIT as unsigned, geometries as WKB plus SRID) — through pymysql rather
than connectorx, whose connection could not share the transaction — and converted by the same rules as
the captured changes (mysql_values.arrow_column).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import pyarrow as pa
import pymysql
import pymysql.cursors

from pipes_workers.cdc.binlog_positions import BinlogPosition, at
from pipes_workers.cdc.mysql_values import arrow_column
from pipes_workers.sources.base import SourceColumn, arrow_schema
from pipes_workers.sources.mysql import MySQLReader

SNAPSHOT_BATCH_ROWS = 50_000


class SnapshotReader(MySQLReader):
    """The MySQL reader, reading FLOAT as DOUBLE: over pymysql's text protocol a FLOAT prints only six
    digits, while connectorx (binary protocol) and the binlog carry the exact float32."""

    def select_item(self, column: SourceColumn) -> str:
        if column.arrow_type == pa.float32():
            return f"CAST({self.quote_identifier(column.name)} AS DOUBLE)"
        return super().select_item(column)


def is_mariadb(conn: pymysql.connections.Connection) -> bool:
    """Whether the server is MariaDB (its version string says so)."""
    return "mariadb" in conn.get_server_info().lower()


def begin_snapshot(conn: pymysql.connections.Connection) -> BinlogPosition:
    """Start a consistent-snapshot transaction on `conn` and return the binlog position it sees."""
    with conn.cursor() as cur:
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        if is_mariadb(conn):
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {_text(name).lower(): _text(value) for name, value in cur.fetchall()}
            return at(status["binlog_snapshot_file"], int(status["binlog_snapshot_position"]))
        cur.execute("FLUSH TABLES WITH READ LOCK")
        try:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            row = show_master_status(cur)
        finally:
            cur.execute("UNLOCK TABLES")
        return at(_text(row[0]), int(row[1]))


def show_master_status(cur: pymysql.cursors.Cursor) -> tuple[object, ...]:
    """The binlog head (file, position, …): SHOW BINARY LOG STATUS where it exists (MySQL 8.2+), else
    SHOW MASTER STATUS; a server without log_bin returns no row."""
    try:
        cur.execute("SHOW BINARY LOG STATUS")
    except pymysql.err.ProgrammingError:
        cur.execute("SHOW MASTER STATUS")
    row = cur.fetchone()
    if row is None:
        raise pymysql.err.OperationalError(1381, "binary logging is not enabled (log_bin is OFF)")
    return tuple(row)


def snapshot_batches(
    reader: SnapshotReader,
    select_sql: str,
    columns: Sequence[SourceColumn],
    table: str,
    on_error: Callable[[BaseException], BaseException],
    batch_rows: int = SNAPSHOT_BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """Stream `select_sql` (the reader's SELECT of `columns`) in the snapshot transaction open on the
    reader's session as batches of the reader's schema; the transaction ends (and the reader closes)
    when the stream does. A driver error is raised as `on_error(exc)`."""
    schema = arrow_schema(columns)
    conn = reader._conn
    cursor = conn.cursor(pymysql.cursors.SSCursor)
    try:
        cursor.execute(select_sql)
        while rows := cursor.fetchmany(batch_rows):
            values = list(zip(*rows, strict=True))
            arrays = [arrow_column(list(v), f, table) for v, f in zip(values, schema, strict=True)]
            yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        cursor.close()
        conn.rollback()
    except pymysql.MySQLError as exc:
        raise on_error(exc) from None
    finally:
        with contextlib.suppress(Exception):  # closing is best effort
            reader.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
