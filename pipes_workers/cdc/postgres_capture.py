"""PostgreSQL change capture: logical replication with the built-in `pgoutput` plugin.

One publication and one slot per control row (per table), both named `dataloader_<control key>_<hash>`
(sanitised, at most 63 characters). Per table, because every load acknowledges its own table's
position: a slot shared by a source's tables could only advance as far as the slowest table's last
load, so one paused or failing table would hold WAL back for all of them; with one slot per table the
WAL a slot retains is bounded by that table's own load interval, the lag check names the table that
holds it, and dropping one row's slot frees exactly its WAL. The cost: each slot decodes the
database's WAL once per load (max_replication_slots must cover the cdc tables).

The snapshot: the publication is created first (pgoutput reads it as of each change), then the slot
over a replication connection with EXPORT_SNAPSHOT, and the table is read inside that snapshot
(REPEATABLE READ, SET TRANSACTION SNAPSHOT): the rows are exactly those committed before the slot's
consistent point, and every later commit is in the slot. Changes are read with
pg_logical_slot_peek_binary_changes over a normal connection (nothing is consumed) and the slot is
advanced with pg_replication_slot_advance only when the strategy acknowledges after its commit.
Positions are commit LSNs (end of the commit record): a slot resumes at transaction boundaries.
Each change carries its transaction's commit time from the Commit message (`Change.committed_at`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import psycopg2
import psycopg2.extras
import pyarrow as pa

from dataloader_contract.errors import ConfigurationError, LoadError
from dataloader_contract.request import LoadRequest
from pipes_workers.cdc import pgoutput
from pipes_workers.cdc.capture import Change, ChangeBatch, ChangeCapture, Snapshot
from pipes_workers.cdc.pg_slots import RowChange, lsn_int, lsn_text, peek_changes, row_changes, slot_name
from pipes_workers.cdc.pg_snapshot import SnapshotReader
from pipes_workers.cdc.pg_text import python_rows, refuse_unsupported
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources import postgres_connect
from pipes_workers.sources.base import SourceColumn
from pipes_workers.sources.failures import classify, scrub
from pipes_workers.sources.postgres import DEFAULT_OPTIONS, SESSION_SETUP, quote_pg_identifier

SETUP = (
    *SESSION_SETUP,
    "SET DateStyle = 'ISO, MDY'",
    "SET bytea_output = 'hex'",
    "SET extra_float_digits = 1",
)


class PostgresCapture(ChangeCapture):
    """The changes of one PostgreSQL table, read from its own logical replication slot."""

    def __init__(self, request: LoadRequest, settings: ConnectionParams) -> None:
        self.request = request
        self.params = settings
        self.slot = slot_name(request.control_key)
        self.schema = request.source_schema or "public"
        self.table = f"{quote_pg_identifier(self.schema)}.{quote_pg_identifier(request.source_table)}"
        self.label = f"{self.schema}.{request.source_table}"
        self._conn = self._connect()
        self._others: list[Any] = []

    @staticmethod
    def position_key(position: str) -> tuple[int, ...]:
        return (lsn_int(position),)

    # -- connections -------------------------------------------------------------------------
    def _kwargs(self) -> dict[str, Any]:
        p = self.params
        found = {"host": p.host, "port": p.port, "dbname": p.database, "user": p.user, "password": p.password}
        options = {**DEFAULT_OPTIONS, **{k: str(v) for k, v in p.options.items()}}
        return {**{k: v for k, v in found.items() if v is not None}, **options}

    def _connect(self) -> psycopg.Connection:
        try:
            conn = postgres_connect.connect(autocommit=True, **self._kwargs())
            for statement in SETUP:
                conn.execute(statement)
        except psycopg.Error as exc:
            raise self._error(exc, f"cannot connect to {self.params.label}") from None
        return conn

    def _error(self, exc: BaseException, what: str) -> LoadError:
        text = str(exc)
        if "wal_level" in text or "REPLICATION" in text or getattr(exc, "sqlstate", None) == "42501":
            detail = scrub(text, self.params.secret_values()).strip()
            return ConfigurationError(
                f"{self.request.control_key}: {what}: {detail} (cdc needs wal_level=logical and a role with "
                "REPLICATION that owns the table and has CREATE on the database)"
            )
        return classify(exc, what=f"{self.request.control_key}: {what}", secrets=self.params.secret_values())

    def _query(self, sql: str, params: Any = None, *, what: str) -> list[tuple[Any, ...]]:
        try:
            cursor = self._conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise self._error(exc, what) from None

    def _slot_row(self) -> tuple[str | None, str | None] | None:
        rows = self._query(
            "SELECT confirmed_flush_lsn::text, restart_lsn::text FROM pg_replication_slots "
            "WHERE slot_name = %s AND database = current_database()",
            (self.slot,),
            what=f"reading slot {self.slot}",
        )
        return rows[0] if rows else None

    # -- the interface -----------------------------------------------------------------------
    def has_position(self, position: str) -> bool:
        row = self._slot_row()
        return row is not None and row[0] is not None and lsn_int(row[0]) <= lsn_int(position)

    def start_snapshot(self) -> Snapshot:
        self._check_replica_identity()
        self.drop()
        self._query(
            f"CREATE PUBLICATION {quote_pg_identifier(self.slot)} FOR TABLE {self.table}",
            what=f"creating publication {self.slot} for {self.label}",
        )
        try:
            replication = psycopg2.connect(
                connection_factory=psycopg2.extras.LogicalReplicationConnection, **self._kwargs()
            )
            self._others.append(replication)
            cursor = replication.cursor()
            cursor.execute(
                f"CREATE_REPLICATION_SLOT {quote_pg_identifier(self.slot)} LOGICAL pgoutput EXPORT_SNAPSHOT"
            )
            _name, consistent_point, snapshot_name, _plugin = cursor.fetchone()
        except psycopg2.Error as exc:
            raise self._error(exc, f"creating replication slot {self.slot}") from None
        reader = SnapshotReader(self.params, snapshot_name)
        self._others.append(reader)
        columns = reader.columns(self.schema, self.request.source_table)
        refuse_unsupported(self.label, columns)
        return Snapshot(
            position=consistent_point, batches=self._snapshot_batches(reader, columns, replication)
        )

    def _snapshot_batches(
        self, reader: SnapshotReader, columns: list[SourceColumn], replication: Any
    ) -> Iterator[pa.RecordBatch]:
        """The table read by the PostgreSQL reader itself (the values of a full load), in the slot's
        snapshot; the replication connection that exported it stays open until the read has it."""
        try:
            for batch in reader.read(self.schema, self.request.source_table, columns=columns):
                replication.close()
                yield batch
        finally:
            replication.close()

    def _check_replica_identity(self) -> None:
        rows = self._query(
            "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
            "AND (i.indisprimary OR i.indisreplident)) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
            (self.schema, self.request.source_table),
            what=f"reading the replica identity of {self.label}",
        )
        if rows and (rows[0][0] == "n" or (rows[0][0] == "d" and not rows[0][1])):
            raise ConfigurationError(
                f"{self.request.control_key}: source table {self.label} has no replica identity (no primary "
                "key): its updates and deletes cannot be captured, and publishing it would make them fail "
                f"on the source; run ALTER TABLE {self.table} REPLICA IDENTITY FULL (or add a primary key)"
            )

    def read_changes(self, after: str, max_changes: int, max_seconds: float) -> ChangeBatch:
        self.acknowledge(after)  # committed in Delta already: the slot need not decode it again
        (upto,) = self._query("SELECT pg_current_wal_flush_lsn()::text", what="reading the WAL position")[0]
        rows, asked = self._peek(upto, max_changes, max_seconds)
        changes, last_commit = self._changes(rows, after)
        exhausted = len(rows) < asked
        end = max(lsn_int(after), lsn_int(upto) if exhausted else 0, last_commit)
        return ChangeBatch(changes=changes, end_position=lsn_text(end), lag_bytes=self.lag_bytes())

    def _peek(self, upto: str, max_changes: int, max_seconds: float) -> tuple[list[tuple[str, bytes]], int]:
        try:
            found = peek_changes(self._conn, self.slot, upto, max_changes, max_seconds)
        except psycopg.Error as exc:
            raise self._error(exc, f"reading the changes of slot {self.slot}") from None
        if found is None:
            raise ConfigurationError(
                f"{self.request.control_key}: decoding the next transaction of slot {self.slot} takes longer "
                "than DATALOADER_CDC_MAX_SECONDS even one change at a time; raise DATALOADER_CDC_MAX_SECONDS"
            )
        return found

    def _changes(self, rows: list[tuple[str, bytes]], after: str) -> tuple[list[Change], int]:
        """The committed changes of this table after `after`, each at its transaction's commit LSN."""
        relations: dict[int, pgoutput.Relation] = {}
        changes: list[Change] = []
        pending: list[RowChange] = []
        last_commit, floor = 0, lsn_int(after)
        for _lsn, data in rows:
            message = pgoutput.decode(data)
            if message.tag == "R" and message.relation is not None:
                relations[message.relation.relid] = message.relation
            elif message.tag == "C":
                last_commit = message.lsn or last_commit
                if last_commit > floor:
                    position = lsn_text(last_commit)
                    changes.extend(
                        self._change(op, position, values, unchanged, moved, message.committed_at)
                        for op, values, unchanged, moved in pending
                    )  # type: ignore[arg-type]
                pending = []
            elif message.tag == "T":
                if any(self._ours(relations.get(relid)) for relid in message.relids):
                    pending.append(("truncate", {}, frozenset(), False))
            elif message.relid is not None and self._ours(relation := relations.get(message.relid)):
                pending.extend(row_changes(relation, message, self.request.primary_keys))  # type: ignore[arg-type]
        return changes, last_commit

    def _change(
        self,
        op: str,
        position: str,
        values: dict[str, Any],
        unchanged: frozenset[str],
        moved: bool,
        committed_at: datetime | None,
    ) -> Change:
        """A Change; a moved row's unchanged TOAST values are read from the source as they are now (a
        later change of them is later in the log, so the batch still ends at the source's values)."""
        if moved and unchanged:
            names = sorted(unchanged)
            where = " AND ".join(f"{quote_pg_identifier(k)} = %s" for k in self.request.primary_keys)
            select = ", ".join(quote_pg_identifier(n) for n in names)
            keys = [values[k] for k in self.request.primary_keys]
            result = self._conn.execute(f"SELECT {select} FROM {self.table} WHERE {where}", keys).pgresult
            if result is not None and result.ntuples:  # the raw text: each type's output function
                texts = [result.get_value(0, i) for i in range(len(names))]
                found = {
                    n: None if t is None else bytes(t).decode() for n, t in zip(names, texts, strict=True)
                }
                values, unchanged = {**values, **found}, frozenset()
        return Change(op, position, values, unchanged, committed_at)  # type: ignore[arg-type]

    def _ours(self, relation: pgoutput.Relation | None) -> bool:
        return relation is not None and (relation.schema, relation.name) == (
            self.schema,
            self.request.source_table,
        )

    def lag_bytes(self) -> int | None:
        """Bytes of WAL the slot makes the server keep (current WAL position - restart_lsn)."""
        rows = self._query(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (self.slot,),
            what=f"reading the lag of slot {self.slot}",
        )
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def acknowledge(self, position: str) -> None:
        row = self._slot_row()
        if row is None or row[0] is None or lsn_int(row[0]) >= lsn_int(position):
            return
        self._query(
            "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)",
            (self.slot, position),
            what=f"advancing slot {self.slot}",
        )

    def to_arrow(self, rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
        return python_rows(rows, schema, self.label)

    def drop(self) -> None:
        for _attempt in range(50):
            rows = self._query(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                (self.slot,),
                what="reading slots",
            )
            if not rows or not rows[0][0]:
                break
            time.sleep(0.1)  # a just-closed replication connection releases its slot a moment later
        if rows:
            self._query(
                "SELECT pg_drop_replication_slot(%s)", (self.slot,), what=f"dropping slot {self.slot}"
            )
        self._query(
            f"DROP PUBLICATION IF EXISTS {quote_pg_identifier(self.slot)}", what="dropping publication"
        )

    def close(self) -> None:
        for conn in [*self._others, self._conn]:
            with contextlib.suppress(Exception):  # closing is best effort
                conn.close()
