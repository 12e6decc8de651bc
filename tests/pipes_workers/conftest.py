"""Fixtures for the load tests: `source` is parametrised over PostgreSQL and MariaDB (MariaDB skips
when unreachable, per the session fixture); `pg_source` is PostgreSQL only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loadtest_support import PostgresSource, SourceDB, open_source


@pytest.fixture(params=["postgresql", "mariadb"])
def source(request: pytest.FixtureRequest) -> Iterator[SourceDB]:
    """A source database of each dialect."""
    with open_source(request, request.param) as db:
        yield db


@pytest.fixture
def pg_source(source_pg_url: str) -> Iterator[SourceDB]:
    """The PostgreSQL source only."""
    db = PostgresSource(source_pg_url)
    try:
        yield db
    finally:
        db.conn.close()
