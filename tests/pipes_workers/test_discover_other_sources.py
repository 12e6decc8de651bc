"""`dataloader discover` on SQLite (a real file), Snowflake (the fakesnow emulator) and ClickHouse
(a real server): the catalog's proposals, and every applied row loads with Delta equal to the source.
The emulator and ClickHouse fixtures skip when unreachable (fail under CI=true)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from discover_support import add_source, assert_delta_equals_source, control_rows, load_all, run_discover
from other_sources_support import ClickHouseSource, SnowflakeSource

from dataloader_contract.request import SourceConfig
from pipes_workers.discovery.catalogs import catalog_for
from pipes_workers.discovery.proposal import propose, watermark_column
from pipes_workers.discovery.settings import DiscoverSettings
from pipes_workers.sources import open_reader

SETTINGS = {"full_below_rows": 10, "backfill_above_bytes": 10**12, "chunk_size": 100}


def proposals(config: SourceConfig) -> dict[str, Any]:
    """table -> Proposal under SETTINGS, straight from the catalog module."""
    with open_reader(config) as reader:
        tables = catalog_for(config.db_type)(reader, None, None)
    return {t.name: propose(t, DiscoverSettings(**SETTINGS)) for t in tables}


def discover_and_load(
    control_conn: psycopg.Connection, control_db_url: str, config: SourceConfig, lake_root: Path
) -> list[dict[str, Any]]:
    """Register the source, `discover --apply --activate`, load every row; the control rows."""
    add_source(control_conn, config)
    code, lines = run_discover(
        control_db_url, config.db_config_key, "--apply", "--activate", settings=SETTINGS
    )
    assert code == 0, lines
    rows = control_rows(control_conn)
    assert load_all(control_db_url, [r["control_key"] for r in rows], lake_root) == {}
    return rows


# -- SQLite -------------------------------------------------------------------------------------
SQLITE_DDL = [
    "CREATE TABLE events (event_id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body BLOB)",
    "CREATE TABLE accounts (id INTEGER PRIMARY KEY, name TEXT, balance DECIMAL(12,2), "
    "updated_at DATETIME NOT NULL)",
    "CREATE INDEX accounts_updated ON accounts (updated_at)",
    "CREATE TABLE rates (code TEXT NOT NULL, day DATE NOT NULL, rate REAL)",
    "CREATE UNIQUE INDEX rates_key ON rates (code, day)",
    "CREATE TABLE notes (body TEXT)",
    "CREATE TABLE huge (id INTEGER PRIMARY KEY, amount DECIMAL(60,2))",
]


@pytest.fixture
def sqlite_config(tmp_path: Path) -> Iterator[SourceConfig]:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        for ddl in SQLITE_DDL:
            conn.execute(ddl)
        conn.executemany(
            "INSERT INTO events (kind, body) VALUES (?, ?)", [(f"k{i}", bytes([i])) for i in range(30)]
        )
        conn.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?)",
            [(i, f"acct {i}", f"{i}.25", f"2024-01-0{1 + i % 9} 10:00:00.{i:06d}") for i in range(40)],
        )
        conn.executemany(
            "INSERT INTO rates VALUES (?, ?, ?)", [("EUR", f"2024-02-{d:02d}", 1.08) for d in range(1, 21)]
        )
        conn.executemany("INSERT INTO notes VALUES (?)", [("n",), ("n",), (None,)])
    yield SourceConfig("lite", "sqlite", "literal", {"path": str(path)})
    path.unlink()


def test_sqlite_catalog_proposals(sqlite_config: SourceConfig) -> None:
    found = proposals(sqlite_config)
    assert {name: p.load_strategy for name, p in found.items()} == {
        "accounts": "incremental",
        "events": "append_only",
        "huge": None,
        "notes": "full",
        "rates": "full",
    }
    assert found["rates"].primary_keys == ("code", "day")
    assert watermark_column(found["events"].table).name == "event_id"
    assert "DECIMAL(60,2)" in (found["huge"].skip_reason or "")


def test_sqlite_discover_apply_loads_every_proposal(
    sqlite_config: SourceConfig, control_conn: psycopg.Connection, control_db_url: str, lake_root: Path
) -> None:
    rows = discover_and_load(control_conn, control_db_url, sqlite_config, lake_root)
    assert {r["source_table"] for r in rows} == {"accounts", "events", "notes", "rates"}

    def source_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
        with sqlite3.connect(sqlite_config.config["path"]) as conn:
            conn.row_factory = sqlite3.Row
            found = [dict(r) for r in conn.execute(f'SELECT * FROM "{row["source_table"]}"')]
        # SQLite keeps dates, times and decimals as text/numbers: the declared type says what they are.
        typed = {"updated_at": datetime.fromisoformat, "day": date.fromisoformat}
        return [{k: typed[k](v) if k in typed else _decimal(k, v) for k, v in r.items()} for r in found]

    assert_delta_equals_source(rows, lake_root, source_rows)


def _decimal(column: str, value: Any) -> Any:
    from decimal import Decimal

    return (
        Decimal(str(value)).quantize(Decimal("0.01")) if column == "balance" and value is not None else value
    )


# -- Snowflake (fakesnow) -----------------------------------------------------------------------
@pytest.fixture
def snowflake(snowflake_url: str) -> Iterator[SnowflakeSource]:
    """A database of its own (discover lists every table of a schema; the session's holds others')."""
    admin = SnowflakeSource(snowflake_url)
    name = f"DISC_{uuid.uuid4().hex[:10].upper()}"
    admin.execute(f'CREATE DATABASE "{name}"')
    admin.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"."PUBLIC"')
    db = SnowflakeSource(urlunsplit(urlsplit(snowflake_url)._replace(path=f"/{name}")))
    db.execute(
        "CREATE TABLE orders (id integer NOT NULL PRIMARY KEY, note varchar, amount number(10,2), "
        "updated_at timestamp_ntz NOT NULL)"
    )
    db.execute("CREATE TABLE clicks (click_id integer autoincrement PRIMARY KEY, url varchar NOT NULL)")
    db.execute("CREATE TABLE regions (code varchar NOT NULL, name varchar)")
    for i in range(25):
        db.execute(
            "INSERT INTO orders VALUES (%s, %s, %s, %s)",
            (i, f"order {i}", f"{i}.50", f"2024-03-01 10:{i:02d}:00.123456"),
        )
        db.execute("INSERT INTO clicks (url) VALUES (%s)", (f"https://x.example/{i}",))
    db.execute("INSERT INTO regions VALUES ('EU', 'Europe'), ('NA', NULL)")
    try:
        yield db
    finally:
        # the emulator cannot drop a database (it keeps them in memory until it stops): drop the tables
        for table in ("orders", "clicks", "regions"):
            db.execute(f"DROP TABLE IF EXISTS {table}")
        db.conn.close()
        admin.conn.close()


def test_snowflake_discover_apply_loads_every_proposal(
    snowflake: SnowflakeSource, control_conn: psycopg.Connection, control_db_url: str, lake_root: Path
) -> None:
    found = proposals(snowflake.config())
    assert {name: p.load_strategy for name, p in found.items()} == {
        "CLICKS": "append_only",  # identity key, no timestamp
        "ORDERS": "incremental",  # declared primary key + NOT NULL timestamp
        "REGIONS": "full",
    }
    assert found["ORDERS"].primary_keys == ("ID",)
    rows = discover_and_load(control_conn, control_db_url, snowflake.config(), lake_root)
    assert {r["source_table"]: r["load_strategy"] for r in rows} == {
        "CLICKS": "append_only", "ORDERS": "incremental", "REGIONS": "full",
    }  # fmt: skip
    assert_delta_equals_source(
        rows, lake_root, lambda row: snowflake.fetch(f'SELECT * FROM "{row["source_table"]}"')
    )


# -- ClickHouse -----------------------------------------------------------------------------------
@pytest.fixture
def clickhouse(clickhouse_url: str) -> Iterator[ClickHouseSource]:
    """A database of its own: discover lists every table of a database, and the session's ClickHouse
    database holds other tests' tables."""
    admin = ClickHouseSource(clickhouse_url)
    name = f"disc_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE `{name}`")
    db = ClickHouseSource(urlunsplit(urlsplit(clickhouse_url)._replace(path=f"/{name}")))
    db.execute(
        "CREATE TABLE hits (id UInt64, url String, at DateTime, note Nullable(String)) "
        "ENGINE = MergeTree ORDER BY (at, id)"
    )
    db.execute("CREATE TABLE bad (id Int64, pair Tuple(Int8, String)) ENGINE = MergeTree ORDER BY id")
    db.conn.execute(
        "INSERT INTO hits VALUES",
        [(i, f"/p/{i}", datetime(2024, 1, 1, 0, i), None if i % 2 else "n") for i in range(30)],
    )
    try:
        yield db
    finally:
        db.conn.close()
        admin.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.conn.close()


def test_clickhouse_discover_apply_loads_every_proposal(
    clickhouse: ClickHouseSource, control_conn: psycopg.Connection, control_db_url: str, lake_root: Path
) -> None:
    found = proposals(clickhouse.config())
    assert found["hits"].load_strategy == "full"  # no unique key in ClickHouse
    assert found["hits"].table.column("at").indexed and not found["hits"].table.column("url").indexed
    assert found["bad"].load_strategy is None and "pair" in (found["bad"].skip_reason or "")
    rows = discover_and_load(control_conn, control_db_url, clickhouse.config(), lake_root)
    assert [r["source_table"] for r in rows] == ["hits"]
    assert_delta_equals_source(
        rows, lake_root, lambda row: clickhouse.fetch(f"SELECT * FROM `{row['source_table']}`")
    )
