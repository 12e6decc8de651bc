"""The demo: a PostgreSQL source with six tables, one per load strategy, and a generator that keeps
changing them, so `make dev` shows loads within a minute.

    python -m dataloader_defs.demo seed --control-url URL --source-url URL
    python -m dataloader_defs.demo generate --source-url URL [--interval 5]

Seeding is idempotent: tables are created if missing, initial rows inserted only into empty tables,
control rows inserted only when their control_key is new.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg

from control_db.urls import libpq_url

DEMO_SOURCE_KEY = "demo"
DEMO_SCHEMA = "shop"

SOURCE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {DEMO_SCHEMA};
CREATE TABLE IF NOT EXISTS {DEMO_SCHEMA}.customers (
    id integer PRIMARY KEY, name text NOT NULL, email text, "Signup Date" date, updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS {DEMO_SCHEMA}.orders (
    id bigserial PRIMARY KEY, customer_id integer NOT NULL, amount numeric(12, 2) NOT NULL,
    status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS {DEMO_SCHEMA}.events (
    id bigserial PRIMARY KEY, event_type text NOT NULL, payload jsonb, created_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS {DEMO_SCHEMA}.daily_metrics (
    metric_date date NOT NULL, metric text NOT NULL, value double precision NOT NULL,
    PRIMARY KEY (metric_date, metric));
CREATE TABLE IF NOT EXISTS {DEMO_SCHEMA}.inventory (
    sku text PRIMARY KEY, qty integer NOT NULL, updated_at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE IF NOT EXISTS {DEMO_SCHEMA}.page_views (
    id bigserial PRIMARY KEY, url text NOT NULL, viewed_at timestamptz NOT NULL DEFAULT clock_timestamp());
"""


@dataclass(frozen=True)
class DemoTable:
    """One demo control row."""

    table: str
    strategy: str
    primary_keys: tuple[str, ...] = ()
    incremental_column: str | None = None
    rolling_column: str | None = None
    rolling_window_days: int | None = None
    chunk_column: str | None = None
    chunk_size: int | None = None

    @property
    def control_key(self) -> str:
        return f"{DEMO_SOURCE_KEY}.{DEMO_SCHEMA}.{self.table}"

    @property
    def destination_table(self) -> str:
        return f"bronze/{DEMO_SOURCE_KEY}/{self.table}"


DEMO_TABLES: tuple[DemoTable, ...] = (
    DemoTable("customers", "full", primary_keys=("id",)),
    DemoTable("orders", "incremental", primary_keys=("id",), incremental_column="updated_at"),
    DemoTable("events", "append_only", primary_keys=("id",), incremental_column="id"),
    DemoTable(
        "daily_metrics",
        "rolling",
        primary_keys=("metric_date", "metric"),
        rolling_column="metric_date",
        rolling_window_days=7,
    ),
    DemoTable("inventory", "check_and_load", primary_keys=("sku",), incremental_column="updated_at"),
    DemoTable(
        "page_views",
        "chunked_backfill",
        primary_keys=("id",),
        incremental_column="viewed_at",
        chunk_column="id",
        chunk_size=2500,
    ),
)


def _initial_rows(conn: psycopg.Connection) -> None:
    def empty(table: str) -> bool:
        return conn.execute(f"SELECT NOT EXISTS (SELECT 1 FROM {DEMO_SCHEMA}.{table})").fetchone()[0]

    if empty("customers"):
        conn.execute(
            f'INSERT INTO {DEMO_SCHEMA}.customers (id, name, email, "Signup Date") '
            "SELECT g, 'Customer ' || g, 'c' || g || '@example.com', current_date - g FROM generate_series(1, 200) g"
        )
    if empty("orders"):
        conn.execute(
            f"INSERT INTO {DEMO_SCHEMA}.orders (customer_id, amount, status) "
            "SELECT 1 + g % 200, round((random() * 500)::numeric, 2), 'new' FROM generate_series(1, 1000) g"
        )
    if empty("events"):
        conn.execute(
            f"INSERT INTO {DEMO_SCHEMA}.events (event_type, payload) "
            "SELECT (ARRAY['click','view','buy'])[1 + g % 3], jsonb_build_object('n', g) FROM generate_series(1, 500) g"
        )
    if empty("daily_metrics"):
        conn.execute(
            f"INSERT INTO {DEMO_SCHEMA}.daily_metrics (metric_date, metric, value) "
            "SELECT current_date - d, m, random() * 100 FROM generate_series(0, 13) d, "
            "unnest(ARRAY['revenue','visits','signups']) m"
        )
    if empty("inventory"):
        conn.execute(
            f"INSERT INTO {DEMO_SCHEMA}.inventory (sku, qty) "
            "SELECT 'SKU-' || lpad(g::text, 4, '0'), (random() * 100)::int FROM generate_series(1, 100) g"
        )
    if empty("page_views"):
        conn.execute(
            f"INSERT INTO {DEMO_SCHEMA}.page_views (url, viewed_at) "
            "SELECT '/p/' || (g % 50), now() - make_interval(secs => 20000 - g) FROM generate_series(1, 10000) g"
        )


def seed_source(source_url: str) -> None:
    """Create and fill the six demo tables in the source database (idempotent)."""
    with psycopg.connect(libpq_url(source_url), autocommit=True, application_name="dataloader-demo") as conn:
        conn.execute(SOURCE_DDL)
        _initial_rows(conn)


def source_config_value(source_url: str) -> dict[str, object]:
    """The dbconfig value (db_kv_scope literal) pointing at the demo source database."""
    parts = urlsplit(libpq_url(source_url))
    value: dict[str, object] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "database": parts.path.lstrip("/"),
        "user": parts.username or "postgres",
    }
    if parts.password:
        value["password"] = parts.password
    return value


def seed_control(control_url: str, source_url: str, *, cron: str = "* * * * *") -> list[str]:
    """Insert the demo dbconfig row and six control rows (new keys only); return the control keys."""
    with psycopg.connect(libpq_url(control_url), autocommit=True, application_name="dataloader-demo") as conn:
        conn.execute(
            "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
            "VALUES (%s, 'postgresql', %s::jsonb, 'literal') "
            "ON CONFLICT (db_config_key) DO UPDATE SET db_config_value = EXCLUDED.db_config_value, updated_at = now()",
            (DEMO_SOURCE_KEY, json.dumps(source_config_value(source_url))),
        )
        for t in DEMO_TABLES:
            conn.execute(
                "INSERT INTO dataloader.table_control (control_key, db_config_key, source_schema, source_table, "
                "destination_table, load_strategy, cron, cron_timezone, primary_keys, incremental_column, "
                "rolling_column, rolling_window_days, chunk_column, chunk_size) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, 'UTC', %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (control_key) DO NOTHING",
                (
                    t.control_key,
                    DEMO_SOURCE_KEY,
                    DEMO_SCHEMA,
                    t.table,
                    t.destination_table,
                    t.strategy,
                    cron,
                    list(t.primary_keys) or None,
                    t.incremental_column,
                    t.rolling_column,
                    t.rolling_window_days,
                    t.chunk_column,
                    t.chunk_size,
                ),
            )
    return [t.control_key for t in DEMO_TABLES]


def generate_once(conn: psycopg.Connection, rng: random.Random) -> None:
    """One round of changes: new and updated orders, events, today's metrics, stock, page views."""
    s = DEMO_SCHEMA
    conn.execute(
        f"INSERT INTO {s}.orders (customer_id, amount, status) "
        "SELECT 1 + (random() * 199)::int, round((random() * 500)::numeric, 2), 'new' FROM generate_series(1, %s)",
        (rng.randint(1, 20),),
    )
    conn.execute(
        f"UPDATE {s}.orders SET status = 'shipped', updated_at = clock_timestamp() "
        f"WHERE id IN (SELECT id FROM {s}.orders WHERE status = 'new' ORDER BY random() LIMIT %s)",
        (rng.randint(0, 10),),
    )
    conn.execute(
        f"INSERT INTO {s}.events (event_type, payload) "
        "SELECT (ARRAY['click','view','buy'])[1 + (random() * 2)::int], jsonb_build_object('r', random()) "
        "FROM generate_series(1, %s)",
        (rng.randint(1, 30),),
    )
    conn.execute(
        f"INSERT INTO {s}.daily_metrics (metric_date, metric, value) "
        "SELECT current_date, m, random() * 100 FROM unnest(ARRAY['revenue','visits','signups']) m "
        "ON CONFLICT (metric_date, metric) DO UPDATE SET value = EXCLUDED.value"
    )
    if rng.random() < 0.3:  # check_and_load: often nothing changes
        conn.execute(
            f"UPDATE {s}.inventory SET qty = qty + 1, updated_at = clock_timestamp() "
            f"WHERE sku = (SELECT sku FROM {s}.inventory ORDER BY random() LIMIT 1)"
        )
    conn.execute(
        f"INSERT INTO {s}.page_views (url) SELECT '/p/' || (random() * 49)::int FROM generate_series(1, %s)",
        (rng.randint(1, 50),),
    )
    if rng.random() < 0.1:
        conn.execute(
            f"INSERT INTO {s}.customers (id, name, email) SELECT coalesce(max(id), 0) + 1, 'New customer', NULL "
            f"FROM {s}.customers"
        )


def generate_forever(source_url: str, *, interval_s: float = 5.0, parent_pid: int | None = None) -> None:
    """Keep changing the demo source until SIGINT/SIGTERM, or until `parent_pid` is no longer our parent
    (the launcher exec'd into `dagster dev`, which keeps the pid; when it exits, so do we)."""
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    rng = random.Random()
    with psycopg.connect(
        libpq_url(source_url), autocommit=True, application_name="dataloader-demo-generator"
    ) as conn:
        while not stopping:
            generate_once(conn, rng)
            deadline = time.monotonic() + interval_s
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.2)
                if parent_pid is not None and os.getppid() != parent_pid:
                    stopping = True


def main(argv: list[str] | None = None) -> int:
    """CLI: `seed` or `generate`."""
    parser = argparse.ArgumentParser(prog="python -m dataloader_defs.demo")
    sub = parser.add_subparsers(dest="action", required=True)
    seed = sub.add_parser("seed", help="create the demo source tables and control rows")
    seed.add_argument("--control-url", required=True)
    seed.add_argument("--source-url", required=True)
    seed.add_argument("--cron", default="* * * * *")
    gen = sub.add_parser("generate", help="keep inserting/updating demo rows")
    gen.add_argument("--source-url", required=True)
    gen.add_argument("--interval", type=float, default=5.0)
    gen.add_argument("--parent-pid", type=int, default=None, help="exit when this process is gone")
    args = parser.parse_args(argv)
    if args.action == "seed":
        seed_source(args.source_url)
        for key in seed_control(args.control_url, args.source_url, cron=args.cron):
            print(key)
    else:
        generate_forever(args.source_url, interval_s=args.interval, parent_pid=args.parent_pid)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
