"""Source readers, looked up by `db_type`: `open_reader(source_config)` → a connected SourceReader.

Tested against real servers: PostgreSQL (ADBC), MySQL/MariaDB (connectorx), SQLite (stdlib),
ClickHouse (clickhouse-driver, native protocol); Snowflake (snowflake-connector-python) against the
fakesnow emulator. SQL Server (connectorx) and Oracle (python-oracledb) are tested offline only.
"""

from __future__ import annotations

import functools
import importlib
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


@functools.cache
def _lazy_reader(module: str, name: str) -> ReaderFactory:
    """A factory for reader class `name` of `pipes_workers.sources.<module>`, imported on first use so
    a worker loads only the driver of the source it reads (one factory per class)."""

    def open_with(params: ConnectionParams) -> SourceReader:
        reader: type[SourceReader] = getattr(importlib.import_module(f"pipes_workers.sources.{module}"), name)
        return reader(params)  # type: ignore[call-arg]

    return open_with


READERS: dict[str, ReaderFactory] = {
    "postgresql": _lazy_reader("postgres", "PostgresReader"),
    "mysql": _lazy_reader("mysql", "MySQLReader"),
    "mariadb": _lazy_reader("mysql", "MySQLReader"),
    "sqlite": _lazy_reader("sqlite", "SQLiteReader"),
    "mssql": _lazy_reader("mssql", "MSSQLReader"),
    "oracle": _lazy_reader("oracle", "OracleReader"),
    "snowflake": _lazy_reader("snowflake", "SnowflakeReader"),
    "clickhouse": _lazy_reader("clickhouse", "ClickHouseReader"),
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
