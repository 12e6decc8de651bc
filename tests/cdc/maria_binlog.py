"""The binlog MariaDB the MySQL/MariaDB cdc tests run against: `make cdc-maria-start` (127.0.0.1:3341,
scripts/cdc_mariadb.sh) or TEST_CDC_MARIADB_URL. `binlog_database()` makes a fresh database on it; it
skips with the reason when the server is unreachable or lacks the row binlog, and fails under CI=true."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pymysql
import pytest

DEFAULT_TEST_CDC_MARIADB_URL = "mysql://root@127.0.0.1:3341/test"
NEEDED = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}


def unavailable(reason: str) -> None:
    """Skip; under CI=true fail (.ci/run starts the server)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def connect(url: str, database: str | None = None) -> pymysql.connections.Connection:
    """An autocommit utf8mb4 connection to the server of `url` (and `database`)."""
    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3341,
        user=parts.username or "root",
        password=parts.password or "",
        database=database,
        autocommit=True,
        charset="utf8mb4",
        connect_timeout=3,
    )


@contextmanager
def binlog_database() -> Iterator[tuple[str, str]]:
    """(server URL, a fresh database on it) on the binlog MariaDB; the database is dropped afterwards."""
    url = os.environ.get("TEST_CDC_MARIADB_URL", DEFAULT_TEST_CDC_MARIADB_URL)
    parts = urlsplit(url)
    try:
        conn = connect(url)
    except pymysql.err.OperationalError as exc:
        unavailable(
            f"cdc MariaDB unreachable at {parts.hostname}:{parts.port} ({exc.args[0]}): "
            "run `make cdc-maria-start` or set TEST_CDC_MARIADB_URL"
        )
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (%s, %s, %s, %s)", tuple(NEEDED))
        found = {name: value for name, value in cur.fetchall()}
        if any(found.get(k) != v for k, v in NEEDED.items()):
            conn.close()
            unavailable(f"cdc MariaDB at {parts.hostname}:{parts.port} has {found}, not {NEEDED}")
        name = f"cdc_maria_{uuid.uuid4().hex[:10]}"
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield url, name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def database_url(server_url: str, database: str) -> str:
    """`server_url` with `database` as its path."""
    return urlsplit(server_url)._replace(path=f"/{database}").geturl()
