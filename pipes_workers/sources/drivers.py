"""The optional driver each db_type needs, and the extra that installs it.

`import_driver(db_type)` is what a reader calls; `missing_driver(db_type)` lets a validator (e.g.
`dataloader validate`, or a check at INSERT of a dbconfig row) report a missing driver without
connecting anywhere.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from dataloader_contract.errors import ConfigurationError


@dataclass(frozen=True)
class Driver:
    """A driver module, the pip package that provides it, and our extra that installs it."""

    module: str
    package: str
    extra: str

    @property
    def install_hint(self) -> str:
        return f"pip install 'dataloader[{self.extra}]' ({self.package})"


# db_types not listed use drivers the base install always has (psycopg, ADBC, connectorx, sqlite3).
DRIVERS = {
    "clickhouse": Driver("clickhouse_driver", "clickhouse-driver", "clickhouse"),
    "snowflake": Driver("snowflake.connector", "snowflake-connector-python", "snowflake"),
    "mssql": Driver("connectorx", "connectorx", "mssql"),
    "oracle": Driver("oracledb", "oracledb", "oracle"),
}


def _message(db_type: str, driver: Driver) -> str:
    return f"db_type {db_type!r} needs the driver module {driver.module!r}: {driver.install_hint}"


def missing_driver(db_type: str) -> str | None:
    """Why `db_type` cannot load here (its driver is not installed), or None when it can."""
    driver = DRIVERS.get(db_type)
    if driver is None:
        return None
    try:
        found = importlib.util.find_spec(driver.module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        found = False
    return None if found else _message(db_type, driver)


def import_driver(db_type: str) -> ModuleType:
    """The driver module for `db_type`; ConfigurationError naming the db_type and the extra when absent."""
    driver = DRIVERS[db_type]
    try:
        return importlib.import_module(driver.module)
    except ImportError:
        raise ConfigurationError(_message(db_type, driver)) from None
