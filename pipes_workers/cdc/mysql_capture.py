"""MySQL/MariaDB change capture: the row-based binlog, read with mysql-replication (pymysqlreplication).

The server must run with log_bin, binlog_format=ROW, binlog_row_image=FULL and binlog_row_metadata=FULL
(column names, signedness, ENUM/SET members and charsets travel in the binlog), and the source user
needs REPLICATION SLAVE and REPLICATION CLIENT (MariaDB: BINLOG MONITOR) besides SELECT on the table.

Positions are `binlog file:offset:row` (binlog_positions.py): a transaction boundary plus the number
of this table's changes read after it. There is no slot: the server keeps binlog files for its own
retention (binlog_expire_logs_seconds / expire_logs_days), whoever reads them; `acknowledge` only
records the committed position (for `lag_bytes`) and `drop` has nothing to release. A position whose
file was purged makes `has_position` False, and the strategy asks for `load_full`.

Each read connects as a replica (COM_BINLOG_DUMP, non-blocking: the server ends the stream at the
binlog head) with a server_id derived from the control key, starting at the position's boundary.
"""

from __future__ import annotations

import contextlib
import logging
import time
import zlib
from typing import Any

import pyarrow as pa
import pymysql
from pymysqlreplication import BinLogStreamReader

from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import LoadRequest
from pipes_workers.cdc import binlog_positions as positions
from pipes_workers.cdc.binlog_events import EVENTS, TableOfInterest, drain
from pipes_workers.cdc.binlog_positions import BinlogPosition
from pipes_workers.cdc.capture import ChangeBatch, ChangeCapture, Snapshot
from pipes_workers.cdc.mysql_snapshot import SnapshotReader, begin_snapshot, snapshot_batches
from pipes_workers.cdc.mysql_values import arrow_table, typed_text
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import SourceColumn
from pipes_workers.sources.failures import classify
from pipes_workers.sources.mysql import MySQLReader, quote_mysql_identifier

LOG = logging.getLogger("pipes_workers.cdc")
REQUIRED_SETTINGS = {
    "log_bin": "ON",
    "binlog_format": "ROW",
    "binlog_row_image": "FULL",
    "binlog_row_metadata": "FULL",
}
ER_MASTER_FATAL_READING_BINLOG = 1236  # e.g. the requested binlog file was purged
ER_ACCESS = {1045, 1142, 1227, 1044}


class MySqlCapture(ChangeCapture):
    """The changes of one MySQL/MariaDB table, read from the server's row-based binlog."""

    def __init__(self, request: LoadRequest, settings: ConnectionParams) -> None:
        self.request = request
        self.params = settings
        self.schema = request.source_schema or settings.schema or settings.database or ""
        if not self.schema:
            raise ConfigurationError(f"{request.control_key}: no source_schema and no database configured")
        self.table = request.source_table
        self.label = f"{quote_mysql_identifier(self.schema)}.{quote_mysql_identifier(self.table)}"
        self._of: TableOfInterest | None = None
        # Unique per table among the replicas of one server (a second dump with the same id ends the first).
        self.server_id = 1_000_000_000 + zlib.crc32(request.control_key.encode()) % 1_000_000_000
        self._committed: BinlogPosition | None = None
        self._checked = False
        # The reader's own session (UTC, utf8mb4): the catalog, settings and binary logs are read on it.
        self._reader = MySQLReader(settings)

    position_key = staticmethod(positions.position_key)

    # -- connections -------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        p = self.params
        return {
            "host": p.host or "127.0.0.1",
            "port": p.port or 3306,
            "user": p.user or "",
            "password": p.password or "",
            "connect_timeout": int(p.options.get("connect_timeout", 10)),
        }

    def _error(self, exc: BaseException, what: str) -> LoadError:
        error = classify(exc, what=f"{self.request.control_key}: {what}", secrets=self.params.secret_values())
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code in ER_ACCESS:
            return ConfigurationError(
                f"{error} (cdc needs a user with REPLICATION SLAVE and REPLICATION CLIENT / BINLOG MONITOR "
                f"and SELECT on {self.label})"
            )
        if code == ER_MASTER_FATAL_READING_BINLOG:
            return ConfigurationError(
                f"{error}: the binlog no longer holds this position; set load_full on the row to take "
                "a new snapshot",
                code="cdc_position_lost",
            )
        return error

    def _query(self, sql: str, *, what: str) -> list[tuple[Any, ...]]:
        try:
            with self._reader._conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        except pymysql.MySQLError as exc:
            raise self._error(exc, what) from None

    def _check_server(self) -> None:
        """ConfigurationError naming every binlog setting the capture needs that the server lacks."""
        if self._checked:
            return
        names = ", ".join(f"'{n}'" for n in REQUIRED_SETTINGS)
        rows = self._query(f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})", what="reading settings")
        found = {_text(name).lower(): _text(value).upper() for name, value in rows}
        wrong = [f"{n}={found.get(n, 'absent')}" for n, v in REQUIRED_SETTINGS.items() if found.get(n) != v]
        if wrong:
            need = ", ".join(f"{n}={v}" for n, v in REQUIRED_SETTINGS.items())
            raise ConfigurationError(
                f"{self.request.control_key}: load_strategy cdc on {self.params.label} needs {need} "
                f"(binlog_row_metadata: MariaDB 10.5+ / MySQL 8.0.14+); the server has {', '.join(wrong)}"
            )
        self._checked = True

    def _binary_logs(self) -> list[positions.BinaryLog]:
        return positions.binary_logs(self._query("SHOW BINARY LOGS", what="listing the binary logs"))

    # -- the interface -----------------------------------------------------------------------
    def has_position(self, position: str) -> bool:
        try:
            parsed = positions.parse_position(position)
        except ValueError:
            return False
        return positions.holds(self._binary_logs(), parsed)

    def start_snapshot(self) -> Snapshot:
        self._check_server()
        reader = SnapshotReader(self.params)  # its session holds the snapshot transaction
        try:
            columns, select = self._select(reader)
            position = begin_snapshot(reader._conn)
        except BaseException as exc:
            reader.close()
            if isinstance(exc, pymysql.MySQLError):
                raise self._error(exc, f"starting a consistent snapshot of {self.label}") from None
            raise
        LOG.info("cdc snapshot of %s at binlog position %s", self.label, position.text())
        batches = snapshot_batches(
            reader, select, columns, self.label, lambda exc: self._error(exc, f"reading {self.label}")
        )
        return Snapshot(position=position.text(), batches=batches)

    def _table_of_interest(self) -> TableOfInterest:
        """The table as the binlog walk needs it (its columns' data types read once)."""
        if self._of is None:
            found = self._reader.columns(self.schema, self.table)
            types = {c.name: _data_type(c) for c in found}
            self._of = TableOfInterest(
                self.schema, self.table, tuple(self.request.primary_keys), self.label, types
            )
        return self._of

    def _select(self, reader: SnapshotReader) -> tuple[list[SourceColumn], str]:
        """The reader's columns of the table (those of `table_schema`, when set, in its order) and the
        reader's SELECT of them; INET6 is refused, as the changes of such a column would be."""
        found = reader.columns(self.schema, self.table)
        for column in found:
            typed_text(b"", _data_type(column), column.name, self.label)
        if not len(self.table_schema):
            return found, reader.select_sql(self.schema, self.table, found, None)
        by_name = {c.name: c for c in found}
        missing = [n for n in self.table_schema.names if n not in by_name]
        if missing:
            raise ConfigurationError(
                f"{self.request.control_key}: source table {self.label} has no column(s) {', '.join(missing)}"
            )
        columns = [by_name[n] for n in self.table_schema.names]
        return columns, reader.select_sql(self.schema, self.table, columns, None)

    def read_changes(self, after: str, max_changes: int, max_seconds: float) -> ChangeBatch:
        self._check_server()
        start = positions.parse_position(after)
        self.acknowledge(after)
        if not self.has_position(after):
            raise ConfigurationError(
                f"{self.request.control_key}: the binlog no longer holds position {after} (purged); set "
                "load_full on the row to take a new snapshot",
                code="cdc_position_lost",
            )
        of = self._table_of_interest()
        stream = BinLogStreamReader(
            connection_settings=self._settings(),
            server_id=self.server_id,
            log_file=start.file,
            log_pos=start.offset,
            resume_stream=True,
            blocking=False,
            only_events=EVENTS,
            only_schemas=[self.schema],
            only_tables=[self.table],
            enable_logging=False,
        )
        try:
            changes, cursor = drain(stream, start, of, max_changes, time.monotonic() + max_seconds)
        except pymysql.MySQLError as exc:
            raise self._error(exc, f"reading the binlog from {after}") from None
        finally:
            stream.close()
        end = max(start, cursor)
        return ChangeBatch(changes=changes, end_position=end.text(), lag_bytes=self._distance(end))

    def _distance(self, position: BinlogPosition) -> int | None:
        return positions.distance(self._binary_logs(), position)

    def lag_bytes(self) -> int | None:
        """Bytes of binlog from the committed position to the head (None before one is known)."""
        return None if self._committed is None else self._distance(self._committed)

    def acknowledge(self, position: str) -> None:
        """Nothing to release on the server (its binlog retention is its own): remember the position."""
        parsed = positions.parse_position(position)
        if self._committed is None or parsed > self._committed:
            self._committed = parsed

    def to_arrow(self, rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
        return arrow_table(rows, schema, self.label)

    def drop(self) -> None:
        LOG.info(
            "cdc on %s: no replication slot to drop on MySQL/MariaDB; the server purges its binlog by its "
            "own retention (binlog_expire_logs_seconds / expire_logs_days)",
            self.label,
        )
        self._committed = None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing is best effort
            self._reader.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _data_type(column: SourceColumn) -> str:
    return column.source_type.split("(")[0].split(" ")[0].lower()
