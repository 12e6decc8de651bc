"""The catalog module for each `db_type`: `list_tables(reader, schema, pattern)`."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from dataloader_contract.errors import ConfigurationError
from pipes_workers.discovery.catalog import CatalogTable
from pipes_workers.sources.base import SourceReader

ListTables = Callable[[SourceReader, str | None, str | None], list[CatalogTable]]

CATALOG_MODULES = {
    "postgresql": "catalog_postgres",
    "mysql": "catalog_mysql",
    "mariadb": "catalog_mysql",
    "sqlite": "catalog_sqlite",
    "clickhouse": "catalog_clickhouse",
    "snowflake": "catalog_snowflake",
    "mssql": "catalog_mssql",
    "oracle": "catalog_oracle",
}


def catalog_for(db_type: str) -> ListTables:
    """`list_tables` of the catalog module for `db_type`; ConfigurationError listing the known types."""
    module = CATALOG_MODULES.get(db_type)
    if module is None:
        raise ConfigurationError(
            f"discover: unknown db_type {db_type!r}; known: {', '.join(sorted(CATALOG_MODULES))}"
        )
    return importlib.import_module(f"pipes_workers.discovery.{module}").list_tables
