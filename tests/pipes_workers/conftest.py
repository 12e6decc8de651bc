"""Fixtures for the load tests: `source` is parametrised over PostgreSQL and MariaDB (MariaDB skips
when unreachable, per the session fixture); `pg_source` is PostgreSQL only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loadtest_support import MariaDBSource, PostgresSource, SourceDB


@pytest.fixture(params=["postgresql", "mariadb"])
def source(request: pytest.FixtureRequest) -> Iterator[SourceDB]:
    """A source database of each dialect."""
    if request.param == "postgresql":
        db: SourceDB = PostgresSource(request.getfixturevalue("source_pg_url"))
    else:
        db = MariaDBSource(request.getfixturevalue("mariadb_url"))
    try:
        yield db
    finally:
        db.conn.close()


@pytest.fixture
def pg_source(source_pg_url: str) -> Iterator[SourceDB]:
    """The PostgreSQL source only."""
    db = PostgresSource(source_pg_url)
    try:
        yield db
    finally:
        db.conn.close()
