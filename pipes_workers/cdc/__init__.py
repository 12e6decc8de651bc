"""Log-based change capture for the `cdc` strategy: `capture_for(request, settings)` opens the capture
of the request's source database (PostgreSQL: logical replication with pgoutput; MySQL/MariaDB: the
row-based binlog). Captures are imported lazily, so a worker loads only its source's driver."""

from __future__ import annotations

import importlib

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import LoadRequest
from pipes_workers.cdc.capture import ChangeCapture
from pipes_workers.secrets import ConnectionParams

CAPTURES = {
    "postgresql": ("postgres_capture", "PostgresCapture"),
    "mysql": ("mysql_capture", "MySqlCapture"),
    "mariadb": ("mysql_capture", "MySqlCapture"),
}


def capture_for(request: LoadRequest, settings: ConnectionParams) -> ChangeCapture:
    """The change capture of `request`'s table on the source `settings` describes; ConfigurationError
    for a database type without one."""
    found = CAPTURES.get(settings.db_type)
    if found is None:
        raise ConfigurationError(
            f"{request.control_key}: load_strategy cdc is not available for db_type {settings.db_type!r} "
            f"(supported: {', '.join(sorted(CAPTURES))})"
        )
    module, name = found
    capture: type[ChangeCapture] = getattr(importlib.import_module(f"pipes_workers.cdc.{module}"), name)
    return capture(request, settings)  # type: ignore[call-arg]
