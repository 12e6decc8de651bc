"""The cdc snapshot's read: the PostgreSQL table reader itself, inside the snapshot a new replication
slot exported, so the snapshot holds exactly the rows and values a `full` load reads."""

from __future__ import annotations

from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.postgres import PostgresReader


class SnapshotReader(PostgresReader):
    """The PostgreSQL reader, its reads inside an exported snapshot (REPEATABLE READ, SET
    TRANSACTION SNAPSHOT): the rows and values of a full load as of the slot's creation."""

    def __init__(self, params: ConnectionParams, snapshot: str) -> None:
        super().__init__(params)
        self.snapshot = snapshot

    def read_session_setup(self) -> tuple[str, ...]:
        return (
            *super().read_session_setup(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f"SET TRANSACTION SNAPSHOT '{self.snapshot}'",
        )
