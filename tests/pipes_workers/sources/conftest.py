"""Fixtures for the source-reader tests: SourceConfigs and admin connections for each real server."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pymysql
import pytest

from dataloader_contract.request import SourceConfig
from pipes_workers.sources import open_reader
from pipes_workers.sources.base import SourceReader


def config_from_url(url: str, db_type: str, *, key: str = "src") -> SourceConfig:
    """A literal-scope SourceConfig for a postgresql:// or mysql:// URL."""
    parts = urlsplit(url)
    config = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or (5432 if db_type == "postgresql" else 3306),
        "database": parts.path.lstrip("/"),
        "user": parts.username or ("postgres" if db_type == "postgresql" else "root"),
    }
    if parts.password:
        config["password"] = parts.password
    return SourceConfig(db_config_key=key, db_type=db_type, kv_scope="literal", config=config)


@pytest.fixture
def pg_config(source_pg_url: str) -> SourceConfig:
    return config_from_url(source_pg_url, "postgresql")


@pytest.fixture
def pg_conn(source_pg_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(source_pg_url, autocommit=True) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        yield conn


@pytest.fixture
def pg_reader(pg_config: SourceConfig) -> Iterator[SourceReader]:
    with open_reader(pg_config) as reader:
        yield reader


@pytest.fixture
def maria_config(mariadb_url: str) -> SourceConfig:
    return config_from_url(mariadb_url, "mariadb")


@pytest.fixture
def maria_conn(mariadb_url: str) -> Iterator[pymysql.connections.Connection]:
    parts = urlsplit(mariadb_url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        database=parts.path.lstrip("/"),
        autocommit=True,
        charset="utf8mb4",
    )
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '+00:00'")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def maria_reader(maria_config: SourceConfig) -> Iterator[SourceReader]:
    with open_reader(maria_config) as reader:
        yield reader


@pytest.fixture
def config_for() -> object:
    """`config_for(url, db_type)` → a literal SourceConfig (for tests that vary one key)."""
    return config_from_url
