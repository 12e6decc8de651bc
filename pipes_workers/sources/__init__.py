"""Source readers, looked up by `db_type`: `open_reader(source_config)` → a connected SourceReader.

Tested against real servers: PostgreSQL (ADBC), MySQL/MariaDB (connectorx), SQLite (stdlib),
ClickHouse (clickhouse-driver, native protocol); Snowflake (snowflake-connector-python) against the
fakesnow emulator. SQL Server (connectorx) and Oracle (python-oracledb) are tested offline only.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import SourceConfig
from pipes_workers.secrets import ConnectionParams, resolve_source
from pipes_workers.sources.base import (
    DEFAULT_BATCH_ROWS,
    Aggregate,
    Condition,
    RowFilter,
    SourceColumn,
    SourceReader,
    arrow_schema,
)

ReaderFactory = Callable[[ConnectionParams], SourceReader]


def _postgres(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.postgres import PostgresReader

    return PostgresReader(params)


def _mysql(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.mysql import MySQLReader

    return MySQLReader(params)


def _sqlite(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.sqlite import SQLiteReader

    return SQLiteReader(params)


def _clickhouse(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.clickhouse import ClickHouseReader

    return ClickHouseReader(params)


def _snowflake(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.snowflake import SnowflakeReader

    return SnowflakeReader(params)


def _mssql(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.mssql import MSSQLReader

    return MSSQLReader(params)


def _oracle(params: ConnectionParams) -> SourceReader:
    from pipes_workers.sources.oracle import OracleReader

    return OracleReader(params)


READERS: dict[str, ReaderFactory] = {
    "postgresql": _postgres,
    "mysql": _mysql,
    "mariadb": _mysql,
    "sqlite": _sqlite,
    "mssql": _mssql,
    "oracle": _oracle,
    "snowflake": _snowflake,
    "clickhouse": _clickhouse,
}


def open_reader(source: SourceConfig, *, secrets_dir: str | os.PathLike[str] | None = None) -> SourceReader:
    """Resolve the source's secrets and open the reader for its `db_type`.

    Raises ConfigurationError for an unknown db_type (listing the known ones), SecretNotFoundError for
    a missing secret, TransientLoadError/PermanentLoadError when the connection fails.
    """
    factory = READERS.get(source.db_type)
    if factory is None:
        raise ConfigurationError(
            f"{source.db_config_key}: unknown db_type {source.db_type!r}; known: {', '.join(sorted(READERS))}"
        )
    return factory(resolve_source(source, secrets_dir=secrets_dir))


__all__ = [
    "DEFAULT_BATCH_ROWS",
    "READERS",
    "Aggregate",
    "Condition",
    "RowFilter",
    "SourceColumn",
    "SourceReader",
    "arrow_schema",
    "open_reader",
]
