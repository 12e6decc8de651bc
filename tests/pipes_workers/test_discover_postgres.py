"""`dataloader discover` on a real PostgreSQL Pagila-like schema: what it proposes, the INSERTs it
prints and applies, and that every applied row loads and lands exactly the source's rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from discover_support import (
    add_source,
    assert_delta_equals_source,
    control_rows,
    delta_rows,
    load_all,
    run_discover,
)
from discovery_schemas import (
    PAGILA_CHANGES,
    PAGILA_DATA,
    PAGILA_DDL,
    PAGILA_EXPECTED,
    PAGILA_SETTINGS,
    PAGILA_WATERMARKS,
)
from loadtest_support import PostgresSource

from pipes_workers.discovery.catalog_postgres import list_tables
from pipes_workers.discovery.proposal import propose, watermark_column
from pipes_workers.discovery.settings import DiscoverSettings
from pipes_workers.sources import open_reader


@pytest.fixture
def pagila(source_pg_url: str, control_conn: psycopg.Connection) -> Iterator[tuple[str, str]]:
    """The Pagila-like schema in a schema of its own, registered as source `pagila`; (key, schema)."""
    schema = f"pagila_{uuid.uuid4().hex[:8]}"
    source = PostgresSource(source_pg_url)
    source.execute(f"CREATE SCHEMA {schema}")
    source.execute(f"SET search_path TO {schema}")
    source.execute(PAGILA_DDL)
    source.execute(PAGILA_DATA)
    config = source.config()
    config = type(config)(
        **{**config.__dict__, "db_config_key": "pagila", "config": {**config.config, "schema": schema}}
    )
    add_source(control_conn, config)
    try:
        yield "pagila", schema
    finally:
        source.execute(f"DROP SCHEMA {schema} CASCADE")
        source.conn.close()


def test_catalog_proposes_the_expected_strategies(pagila: tuple[str, str], source_pg_url: str) -> None:
    _, schema = pagila
    config = PostgresSource(source_pg_url).config()
    with open_reader(config) as reader:
        tables = {t.name: t for t in list_tables(reader, schema)}
    assert len(tables) >= 20
    settings = DiscoverSettings(**PAGILA_SETTINGS)
    proposed = {name: propose(t, settings).load_strategy for name, t in tables.items()}
    assert proposed == PAGILA_EXPECTED
    for name, column in PAGILA_WATERMARKS.items():
        watermark = watermark_column(tables[name])
        assert watermark is not None and watermark.name == column
    assert (
        tables["film_review"].primary_key == ("review_id",)
        and tables["film_review"].key_origin == "unique index"
    )
    assert tables["film_text"].primary_key == ()
    assert [c.name for c in tables["exchange_rate"].refused] == ["rate"]
    with open_reader(config) as reader:
        assert [t.name for t in list_tables(reader, schema, "film_*")] == [
            "film_actor", "film_category", "film_review", "film_text",
        ]  # fmt: skip


def test_discover_apply_activate_loads_every_proposal(
    pagila: tuple[str, str], control_conn: psycopg.Connection, control_db_url: str, lake_root: Path,
    source_pg_url: str,
) -> None:  # fmt: skip
    key, schema = pagila
    code, lines = run_discover(
        control_db_url, key, "--schema", schema, "--apply", "--activate", settings=PAGILA_SETTINGS
    )
    assert code == 0, lines
    rows = control_rows(control_conn)
    expected = {t: s for t, s in PAGILA_EXPECTED.items() if s is not None}
    assert {r["source_table"]: r["load_strategy"] for r in rows} == expected
    assert all(r["is_active"] and r["source_schema"] == schema for r in rows)
    history = control_conn.execute(
        "SELECT DISTINCT change_type, change_source FROM dataloader.table_control_history"
    ).fetchall()
    assert history == [("INSERT", "dataloader-discover")]
    assert sum(line.startswith("INSERT INTO dataloader.table_control") for line in lines) == len(rows)

    assert load_all(control_db_url, [r["control_key"] for r in rows], lake_root) == {}
    statuses = {r["control_key"]: r["last_status"] for r in control_rows(control_conn)}
    assert set(statuses.values()) == {"Succeeded"}
    source = PostgresSource(source_pg_url)

    def source_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
        return source.fetch(f"SELECT * FROM {source.quote(schema)}.{source.quote(row['source_table'])}")

    assert_delta_equals_source(rows, lake_root, source_rows)
    backfilled = next(r for r in control_rows(control_conn) if r["source_table"] == "rental_history")
    assert backfilled["load_strategy"] == "incremental"  # the backfill handed over
    assert len(delta_rows(lake_root, backfilled["destination_table"])) == 4000

    # The proposed watermarks and keys pick up what changes next.
    source.execute(f"SET search_path TO {schema}")
    source.execute(PAGILA_CHANGES)
    assert load_all(control_db_url, [r["control_key"] for r in rows], lake_root) == {}
    assert_delta_equals_source(rows, lake_root, source_rows)
    source.conn.close()


def test_rerun_skips_registered_tables_and_inserts_inactive(
    pagila: tuple[str, str], control_conn: psycopg.Connection, control_db_url: str
) -> None:
    key, schema = pagila
    code, _ = run_discover(
        control_db_url, key, "--schema", schema, "--tables", "film*", "--apply", settings=PAGILA_SETTINGS
    )
    assert code == 0
    first = control_rows(control_conn)
    assert {r["source_table"] for r in first} == {
        "film",
        "film_actor",
        "film_category",
        "film_review",
        "film_text",
    }
    assert not any(r["is_active"] for r in first)
    code, lines = run_discover(control_db_url, key, "--schema", schema, "--apply", settings=PAGILA_SETTINGS)
    assert code == 0
    assert any("film_actor" in line and "registered" in line for line in lines)
    assert not any("film_actor" in line for line in lines if line.startswith("VALUES"))
    second = control_rows(control_conn)
    assert len(second) == len([s for s in PAGILA_EXPECTED.values() if s is not None])
    assert [r for r in second if r["source_table"].startswith("film")] == first  # untouched
    odd = next(r for r in second if r["source_table"] == 'Store Hours "2024"')
    assert odd["destination_table"] == f"bronze/pagila/{schema}/store_hours_2024"
    assert odd["control_key"] == f'pagila.{schema}.Store Hours "2024"'


def test_unknown_source_is_refused(control_conn: psycopg.Connection, control_db_url: str) -> None:
    code, lines = run_discover(control_db_url, "nope")
    assert code == 1 and lines == []
