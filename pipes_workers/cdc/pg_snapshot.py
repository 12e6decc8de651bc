"""The cdc snapshot's read: the PostgreSQL table reader itself, inside the snapshot a new replication
slot exported, so the snapshot holds exactly the rows and values a `full` load reads."""

from __future__ import annotations

from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.postgres import PostgresReader
from pipes_workers.sources.postgres_sessions import AdbcSession


class SnapshotReader(PostgresReader):
    """The PostgreSQL reader, its reads inside an exported snapshot (REPEATABLE READ, SET
    TRANSACTION SNAPSHOT): the rows and values of a full load as of the slot's creation."""

    def __init__(self, params: ConnectionParams, snapshot: str) -> None:
        super().__init__(params)
        self.snapshot = snapshot

    def _adbc_session(self) -> AdbcSession:
        session = super()._adbc_session()
        try:
            for statement in (
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                f"SET TRANSACTION SNAPSHOT '{self.snapshot}'",
            ):
                session.statement.set_sql_query(statement)
                session.statement.execute_update()
        except Exception as exc:
            session.close()
            raise self._classify(exc, f"reading {self.params.label} in the slot's snapshot") from None
        return session
