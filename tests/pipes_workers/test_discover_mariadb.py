"""`dataloader discover` on a real MariaDB schema: what it proposes, and that every row it applies
with --activate loads and lands exactly the source's rows."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from discover_support import add_source, assert_delta_equals_source, control_rows, load_all, run_discover
from discovery_schemas import MARIADB_CHANGES, MARIADB_DDL, MARIADB_EXPECTED, MARIADB_SETTINGS
from loadtest_support import MariaDBSource

from pipes_workers.discovery.catalog_mysql import list_tables
from pipes_workers.discovery.proposal import propose, watermark_column
from pipes_workers.discovery.settings import DiscoverSettings
from pipes_workers.sources import open_reader

BASE = datetime(2024, 5, 1, 8, 0, 0, 250001, tzinfo=UTC)


def _fill(db: MariaDBSource) -> None:
    for ddl in MARIADB_DDL:
        db.execute(ddl)

    def stamp(i: int) -> datetime:
        return (BASE + timedelta(minutes=i, microseconds=i)).replace(tzinfo=None)

    many = [
        ("INSERT INTO customers (email, name, vip, updated_at) VALUES (%s, %s, %s, %s)",
         [(f"c{i}@example.com", f"name {i}" if i % 5 else None, i % 2, stamp(i)) for i in range(300)]),
        ("INSERT INTO orders (customer_id, status, total, created, modified) VALUES (%s, %s, %s, %s, %s)",
         [(i % 300, ("new", "paid", "shipped")[i % 3], f"{i}.{i % 100:02d}", stamp(i), stamp(i + 7)) for i in range(400)]),
        ("INSERT INTO order_lines VALUES (%s, %s, %s, %s, %s, %s)",
         [(i // 3, i % 3, f"SKU-{i % 40}", 1 + i % 4, "9.95", stamp(i)) for i in range(600)]),
        ("INSERT INTO products VALUES (%s, %s, %s, %s)",
         [(f"SKU-{i}", f"product {i}", json.dumps({"color": "red", "size": i}), "19.99") for i in range(40)]),
        ("INSERT INTO click_events (session_id, url, payload) VALUES (%s, %s, %s)",
         [(f"{i:032x}", f"https://shop.example/p/{i}", bytes([i % 256, 0, 255])) for i in range(500)]),
        ("INSERT INTO stock_moves (sku, delta, moved_at) VALUES (%s, %s, %s)",
         [(f"SKU-{i % 40}", (i % 7) - 3, stamp(i)) for i in range(250)]),
        ("INSERT INTO warehouses VALUES (%s, %s)", [("AMS", "Amsterdam"), ("LIS", "Lisbon"), ("AMS", "Amsterdam")]),
        ("INSERT INTO audit_trail (actor, action, at_year, flags) VALUES (%s, %s, %s, %s)",
         [(f"user{i % 9}", "login", 2000 + i % 50, i % 256) for i in range(150)]),
        ("INSERT INTO `promo codes` VALUES (%s, %s, %s, %s)",
         [(f"PROMO{i}", i % 90, None if i % 3 else "2025-01-31", None if i % 2 else stamp(i)) for i in range(120)]),
        ("INSERT INTO ledger (account, amount, note, booked_at, changed_at) VALUES (%s, %s, %s, %s, %s)",
         [(f"ACC{i % 12}", f"{i}.1234", "ledger note " * 15, stamp(i), stamp(i + 1)) for i in range(5000)]),
    ]  # fmt: skip
    with db.conn.cursor() as cur:
        for sql, rows in many:
            cur.executemany(sql, rows)
        for table in MARIADB_EXPECTED:
            cur.execute(f"ANALYZE TABLE {db.quote(table)}")
            cur.fetchall()


@pytest.fixture
def shop(mariadb_url: str, control_conn: psycopg.Connection) -> Iterator[MariaDBSource]:
    """The shop schema in a MariaDB database of its own (discover lists every table of a database, and
    the session's database holds other tests' tables), registered as source `shop`."""
    admin = MariaDBSource(mariadb_url)
    name = f"shop_{uuid.uuid4().hex[:10]}"
    admin.execute(f"CREATE DATABASE {admin.quote(name)}")
    db = MariaDBSource(urlunsplit(urlsplit(mariadb_url)._replace(path=f"/{name}")))
    try:
        _fill(db)
        add_source(control_conn, replace(db.config(), db_config_key="shop"))
        yield db
    finally:
        db.conn.close()
        admin.execute(f"DROP DATABASE IF EXISTS {admin.quote(name)}")
        admin.conn.close()


def test_catalog_proposes_the_expected_strategies(shop: MariaDBSource) -> None:
    with open_reader(shop.config()) as reader:
        tables = {t.name: t for t in list_tables(reader, None)}
    settings = DiscoverSettings(**MARIADB_SETTINGS)
    assert {name: propose(t, settings).load_strategy for name, t in tables.items()} == MARIADB_EXPECTED
    assert watermark_column(tables["orders"]).name == "modified"
    assert watermark_column(tables["click_events"]).name == "event_id"
    assert tables["products"].primary_key == ("sku",) and tables["products"].key_origin == "unique index"
    assert tables["customers"].primary_key == ("id",)


def test_discover_apply_activate_loads_every_proposal(
    shop: MariaDBSource, control_conn: psycopg.Connection, control_db_url: str, lake_root: Path
) -> None:
    code, lines = run_discover(control_db_url, "shop", "--apply", "--activate", settings=MARIADB_SETTINGS)
    assert code == 0, lines
    rows = control_rows(control_conn)
    assert {r["source_table"]: r["load_strategy"] for r in rows} == MARIADB_EXPECTED
    assert load_all(control_db_url, [r["control_key"] for r in rows], lake_root) == {}

    def source_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
        rows = shop.fetch(f"SELECT * FROM {shop.quote(row['source_table'])}")
        # pymysql hands BIT(8) over as bytes; the loader reads it as the integer it is.
        return [{k: int.from_bytes(v, "big") if k == "flags" else v for k, v in r.items()} for r in rows]

    assert_delta_equals_source(rows, lake_root, source_rows)

    # The proposed watermarks and keys pick up what changes next.
    for statement in MARIADB_CHANGES:
        shop.execute(statement)
    assert load_all(control_db_url, [r["control_key"] for r in rows], lake_root) == {}
    assert_delta_equals_source(rows, lake_root, source_rows)
