"""Load-test support: a source database per dialect (PostgreSQL, MariaDB) behind one API.

`source` is parametrised over both dialects (MariaDB skips when unreachable, per the session
fixture). Tables are created with a unique name per test and an awkward column name, so every test
also exercises identifier quoting. Helpers compare the Delta destination with the source row by row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pymysql

from dataloader_contract.request import LoadRequest, SourceConfig, table_uri
from dataloader_contract.result import LoadResult
from pipes_workers.delta import DeltaDestination
from pipes_workers.storage import lake_storage_options

ODD = "Customer Name; x"


class SourceDB:
    """A source database for tests: DDL for an `events` table, DML, and reading rows back."""

    db_type: str
    url: str

    def quote(self, name: str) -> str:
        raise NotImplementedError

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        raise NotImplementedError

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def config(self) -> SourceConfig:
        parts = urlsplit(self.url)
        return SourceConfig(
            db_config_key=f"test_{self.db_type}",
            db_type=self.db_type,
            kv_scope="literal",
            config={
                "host": parts.hostname or "127.0.0.1",
                "port": parts.port or (5432 if self.db_type == "postgresql" else 3306),
                "database": parts.path.lstrip("/"),
                "user": parts.username or "root",
                "password": parts.password or "",
            },
        )

    def events_table(self, name: str | None = None) -> str:
        """Create an empty events table: id, the odd column, amount, updated_at (incremental), event_date."""
        name = name or f"ev_{uuid.uuid4().hex[:8]}"
        self.execute(self.events_ddl(self.quote(name)))
        return name

    def events_ddl(self, table: str) -> str:
        raise NotImplementedError

    def ts(self, value: datetime) -> Any:
        """A value for the updated_at column from an aware datetime."""
        return value

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert (id, name, amount, updated_at, event_date) tuples."""
        cols = ", ".join(self.quote(c) for c in ("id", ODD, "amount", "updated_at", "event_date"))
        for row in rows:
            values = (*row[:3], self.ts(row[3]) if row[3] is not None else None, row[4])
            self.execute(f"INSERT INTO {self.quote(table)} ({cols}) VALUES (%s, %s, %s, %s, %s)", values)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every source row as a dict, ordered by id, values normalised like the destination's."""
        return [normalise(r) for r in self.fetch(f"SELECT * FROM {self.quote(table)} ORDER BY id")]

    def request(self, table: str, strategy: str, lake_root: Path, **fields: Any) -> LoadRequest:
        """A load request for `table` with sensible defaults for the strategy."""
        defaults: dict[str, Any] = {
            "control_key": f"test.{table}",
            "load_strategy": strategy,
            "source_schema": None,
            "source_table": table,
            "destination_table": f"bronze/test/{table.replace(' ', '_')}",
            "source": self.config(),
            "lake_root": str(lake_root),
            "primary_keys": ("id",),
            "incremental_column": "updated_at",
            "run_id": "run-1",
        }
        defaults.update(fields)
        return LoadRequest(**defaults)


class PostgresSource(SourceDB):
    db_type = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn = psycopg.connect(url, autocommit=True)

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.conn.execute(sql, params)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql)
        names = [d.name for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def events_ddl(self, table: str) -> str:
        return (
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, {self.quote(ODD)} text, amount numeric(12,2), "
            "updated_at timestamptz, event_date date)"
        )


class MariaDBSource(SourceDB):
    db_type = "mariadb"

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        self.conn = pymysql.connect(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=parts.username or "root",
            password=parts.password or "",
            database=parts.path.lstrip("/"),
            autocommit=True,
        )
        self.execute("SET time_zone = '+00:00'")

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, params)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        with self.conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def events_ddl(self, table: str) -> str:
        # DATETIME(6): naive timestamps (MariaDB TIMESTAMP stops in 2038, and the capping test needs 2087).
        return (
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, {self.quote(ODD)} text, amount decimal(12,2), "
            "updated_at datetime(6) NULL, event_date date)"
        )

    def ts(self, value: datetime) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None)


def normalise(row: dict[str, Any]) -> dict[str, Any]:
    """Aware datetimes to UTC so source and Delta rows compare equal."""
    return {k: (v.astimezone(UTC) if isinstance(v, datetime) and v.tzinfo else v) for k, v in row.items()}


def destination_rows(request: LoadRequest) -> list[dict[str, Any]]:
    """Every Delta row of the request's destination, ordered by id."""
    uri = table_uri(request.lake_root, request.destination_table)
    table = DeltaDestination(uri, storage_options=lake_storage_options(request.lake_root)).read_arrow()
    if table.num_columns == 0:
        return []
    return [normalise(r) for r in table.sort_by("id").to_pylist()]


def assert_same_rows(source: SourceDB, table: str, request: LoadRequest) -> None:
    """The destination holds exactly the source's rows (same ids, same values, no duplicates)."""
    src = source.rows(table)
    dst = destination_rows(request)
    dst_ids = [r["id"] for r in dst]
    assert len(dst_ids) == len(set(dst_ids)), "duplicate ids in the destination"
    assert dst == src


def after_success(request: LoadRequest, result: LoadResult) -> LoadRequest:
    """The next request, as mark_succeeded would leave the control row."""
    changes: dict[str, Any] = {"load_full": False}
    if result.watermark_after is not None:
        changes["incremental_value"] = result.watermark_after
    if result.next_load_strategy:
        changes["load_strategy"] = result.next_load_strategy
    return dataclasses.replace(request, **changes)


def make_rows(ids: range, *, base: datetime | None = None, amount: str = "1.50") -> list[tuple[Any, ...]]:
    """Rows (id, name, amount, updated_at, event_date) with microsecond-precise distinct stamps."""
    base = base or datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    return [
        (
            i,
            f"name {i}",
            Decimal(amount) + i,
            base + timedelta(seconds=i, microseconds=i),
            (base + timedelta(days=i)).date(),
        )
        for i in ids
    ]


def insert_control_row(
    conn: psycopg.Connection, control_key: str, db_config_key: str, table: str, **fields: Any
) -> str:
    """Insert a control row: incremental on `table` (key `id`, watermark `updated_at`) unless overridden."""
    values = {
        "control_key": control_key,
        "db_config_key": db_config_key,
        "source_table": table,
        "destination_table": "bronze/test/" + control_key.replace(".", "_"),
        "load_strategy": "incremental",
        "cron": "0 * * * *",
        "primary_keys": ["id"],
        "incremental_column": "updated_at",
        **fields,
    }
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    conn.execute(f"INSERT INTO dataloader.table_control ({names}) VALUES ({marks})", list(values.values()))
    return control_key


WORKER = (
    "import json, sys\n"
    "from pipes_workers.load import run_load\n"
    "from dataloader_contract.request import LoadRequest\n"
    "run_load(LoadRequest.from_dict(json.loads(sys.argv[1])))\n"
)


def killed_worker(request: LoadRequest, crash_after: str) -> None:
    """Run the load in a subprocess that SIGKILLs itself at `crash_after`; assert it died that way."""
    env = {**os.environ, "DATALOADER_TEST_CRASH_AFTER": crash_after}
    proc = subprocess.run(
        [sys.executable, "-c", WORKER, json.dumps(request.to_dict())],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


@contextlib.contextmanager
def open_source(request: Any, db_type: str) -> Iterator[SourceDB]:
    """A source database of `db_type` (postgresql, mariadb or clickhouse) from its session fixture
    (`request`: a pytest FixtureRequest), its connection closed afterwards."""
    db: SourceDB
    if db_type == "postgresql":
        db = PostgresSource(request.getfixturevalue("source_pg_url"))
    elif db_type == "clickhouse":
        from other_sources_support import ClickHouseSource

        db = ClickHouseSource(request.getfixturevalue("clickhouse_url"))
    else:
        db = MariaDBSource(request.getfixturevalue("mariadb_url"))
    try:
        yield db
    finally:
        db.conn.close()
