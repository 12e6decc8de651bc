"""A PostgreSQL source the server refuses at connect keeps the server's SQLSTATE (issue 23): libpq
reports startup refusals as text only, and a missing database used to be recorded with code NULL."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from loadtest_support import PostgresSource
from test_local_load import add_control_row

from dataloader_contract.errors import LoadError
from pipes_workers.local_load import load_control_key
from pipes_workers.sources import open_reader


@pytest.fixture
def refusing(pg_admin_url: str) -> Iterator[dict[str, str]]:
    """Databases the server refuses connections to, and a plain role (a superuser passes a database's
    connection limit and its CONNECT privilege); dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "closed": f"dl_closed_{suffix}",
        "full": f"dl_full_{suffix}",
        "private": f"dl_private_{suffix}",
        "role": f"dl_plain_{suffix}",
    }
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {names['role']} LOGIN")
        try:
            conn.execute(f"CREATE DATABASE {names['closed']} ALLOW_CONNECTIONS false")
            conn.execute(f"CREATE DATABASE {names['full']} CONNECTION LIMIT 0")
            conn.execute(f"CREATE DATABASE {names['private']}")
            conn.execute(f"REVOKE CONNECT ON DATABASE {names['private']} FROM PUBLIC")
            yield names
        finally:
            for kind in ("closed", "full", "private"):
                conn.execute(f"DROP DATABASE IF EXISTS {names[kind]}")
            conn.execute(f"DROP ROLE IF EXISTS {names['role']}")


def _refusal(source: PostgresSource, **config: str) -> LoadError:
    base = source.config()
    with pytest.raises(LoadError) as raised:
        open_reader(dataclasses.replace(base, config={**base.config, **config})).close()
    return raised.value


def test_startup_refusals_keep_their_sqlstate(source_pg_url: str, refusing: dict[str, str]) -> None:
    source = PostgresSource(source_pg_url)
    role = refusing["role"]
    cases = {
        "missing database": ({"database": "dl_no_such_database"}, "3D000", "permanent"),
        "missing role": ({"user": "dl_no_such_role"}, "28000", "permanent"),
        "closed database": ({"database": refusing["closed"]}, "55000", "permanent"),
        "no CONNECT privilege": ({"database": refusing["private"], "user": role}, "42501", "permanent"),
        "connection limit reached": ({"database": refusing["full"], "user": role}, "53300", "transient"),
    }
    for name, (config, code, kind) in cases.items():
        error = _refusal(source, **config)
        assert (error.code, error.kind) == (code, kind), (name, error)
        assert "FATAL" in error.message and "\n" not in error.message
    source.conn.close()


def test_a_load_from_a_missing_database_is_recorded_with_3D000(
    control_conn: psycopg.Connection, control_db_url: str, source_pg_url: str, lake_root: Path
) -> None:
    source = PostgresSource(source_pg_url)
    table = source.events_table()
    key = add_control_row(control_conn, source, table, load_strategy="full")
    control_conn.execute(
        "UPDATE dataloader.table_control_dbconfig SET db_config_value = "
        "jsonb_set(db_config_value, '{database}', '\"dl_no_such_database\"')"
    )

    result = load_control_key(control_db_url, key, str(lake_root), log=lambda _m: None)

    assert result.error is not None and result.error.code == "3D000"
    row = control_conn.execute(
        "SELECT last_status, last_error_kind, last_error_code FROM dataloader.table_control "
        "WHERE control_key = %s",
        (key,),
    ).fetchone()
    assert row == ("Failed", "permanent", "3D000")
    source.conn.close()
