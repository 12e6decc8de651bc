"""The PostgreSQL reader's own sessions: a COUNT running in a thread on a connection of its own, and
an ADBC database + connection + statement opened and closed together."""

from __future__ import annotations

import contextlib
import threading

import adbc_driver_manager
import adbc_driver_postgresql
import psycopg


class BackgroundCount:
    """One COUNT query running in a thread on a connection it owns and closes when done."""

    def __init__(self, conn: psycopg.Connection, sql: str) -> None:
        self._conn = conn
        self._sql = sql
        self._count: int | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="dataloader-count", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            row = self._conn.execute(self._sql).fetchone()
            self._count = int(row[0]) if row is not None else 0
        except BaseException as exc:  # handed to the waiting thread
            self._error = exc
        finally:
            # Ends the transaction now: its snapshot and its lock on the table go with it.
            self._conn.close()

    def value(self) -> int:
        """Wait for the count; raises the query's error."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._count is not None
        return self._count

    def abandon(self) -> None:
        """Cancel a count nobody waited for (the load failed first) and close its connection."""
        if self._thread.is_alive():
            with contextlib.suppress(psycopg.Error):
                self._conn.cancel_safe()
            self._thread.join(timeout=5)


class AdbcSession:
    """One ADBC database + connection + statement, closed together (statement first)."""

    def __init__(
        self,
        database: adbc_driver_manager.AdbcDatabase,
        connection: adbc_driver_manager.AdbcConnection,
        statement: adbc_driver_manager.AdbcStatement,
    ) -> None:
        self.database = database
        self.connection = connection
        self.statement = statement

    @classmethod
    def open(cls, uri: str) -> AdbcSession:
        database = adbc_driver_postgresql.connect(uri)
        connection = None
        try:
            connection = adbc_driver_manager.AdbcConnection(database)
            return cls(database, connection, adbc_driver_manager.AdbcStatement(connection))
        except BaseException:
            # An interrupt can land after the connection opened but before it was assigned here:
            # closing the database then raises "Cannot close AdbcDatabase with open AdbcConnection",
            # which must not replace what interrupted the connect (a permanent error by its looks).
            _close_quietly(connection, database)
            raise

    def close(self) -> None:
        try:
            self.statement.close()
        finally:
            try:
                self.connection.close()
            finally:
                self.database.close()


def _close_quietly(
    *handles: adbc_driver_manager.AdbcConnection | adbc_driver_manager.AdbcDatabase | None,
) -> None:
    """Close what a failed connect opened, ignoring errors: the connect's own error is reported."""
    for handle in handles:
        if handle is not None:
            with contextlib.suppress(Exception):
                handle.close()
