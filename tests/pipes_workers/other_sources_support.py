"""Load-test sources for ClickHouse and Snowflake behind loadtest_support's SourceDB API.

ClickHouse has no UPDATE/DELETE statements before 23.x: `execute` turns them into the mutations
`ALTER TABLE … UPDATE/DELETE` and waits until the server has applied them. Its DateTime holds whole
seconds, so the scenario tests use second-precision stamps for every source.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
from loadtest_support import ODD, SourceDB, normalise

from dataloader_contract.request import LoadRequest, SourceConfig, table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load
from pipes_workers.sources.clickhouse import quote_clickhouse_identifier
from pipes_workers.sources.literals import clickhouse_literal

_UPDATE = re.compile(
    r"^\s*UPDATE\s+(?P<table>`(?:[^`\\]|\\.)*`)\s+SET\s+(?P<set>.+?)(?:\s+WHERE\s+(?P<where>.+))?$", re.S
)
_DELETE = re.compile(r"^\s*DELETE\s+FROM\s+(?P<table>`(?:[^`\\]|\\.)*`)(?:\s+WHERE\s+(?P<where>.+))?$", re.S)


class ClickHouseSource(SourceDB):
    """A ClickHouse database (one per session) holding MergeTree tables ordered by id."""

    db_type = "clickhouse"
    null_timestamps = True

    def __init__(self, url: str) -> None:
        from clickhouse_driver import Client

        self.url = url
        parts = urlsplit(url)
        self.database = parts.path.lstrip("/")
        self.conn = Client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 9000,
            database=self.database,
            user=parts.username or "default",
            password=parts.password or "",
        )
        self.conn.close = self.conn.disconnect  # the fixtures close `conn`

    def config(self) -> SourceConfig:
        parts = urlsplit(self.url)
        return SourceConfig(
            db_config_key="test_clickhouse",
            db_type="clickhouse",
            kv_scope="literal",
            config={
                "host": parts.hostname or "127.0.0.1",
                "port": parts.port or 9000,
                "database": self.database,
                "user": parts.username or "default",
                "password": parts.password or "",
            },
        )

    def quote(self, name: str) -> str:
        return quote_clickhouse_identifier(name)

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        if params:
            parts = sql.split("%s")
            assert len(parts) == len(params) + 1, sql
            sql = parts[0] + "".join(
                clickhouse_literal(p) + rest for p, rest in zip(params, parts[1:], strict=True)
            )
        if m := _UPDATE.match(sql):
            sql = f"ALTER TABLE {m['table']} UPDATE {m['set']} WHERE {m['where'] or '1'}"
        elif m := _DELETE.match(sql):
            sql = f"ALTER TABLE {m['table']} DELETE WHERE {m['where'] or '1'}"
        self.conn.execute(sql)
        if sql.startswith("ALTER TABLE"):
            self._wait_for_mutations()

    def _wait_for_mutations(self) -> None:
        for _ in range(200):
            pending = self.conn.execute(
                "SELECT count() FROM system.mutations WHERE database = %(db)s AND is_done = 0",
                {"db": self.database},
            )[0][0]
            if not pending:
                return
            time.sleep(0.05)
        raise AssertionError("ClickHouse mutations did not finish within 10 s")

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        cols = ", ".join(self.quote(c) for c in ("id", ODD, "amount", "updated_at", "event_date"))
        self.conn.execute(f"INSERT INTO {self.quote(table)} ({cols}) VALUES", [tuple(r) for r in rows])

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        rows, columns = self.conn.execute(sql, with_column_types=True)
        names = [c[0] for c in columns]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def events_ddl(self, table: str) -> str:
        return (
            f"CREATE TABLE {table} (id Int64, {self.quote(ODD)} Nullable(String), "
            "amount Nullable(Decimal(12, 2)), updated_at Nullable(DateTime('UTC')), event_date Nullable(Date)) "
            "ENGINE = MergeTree ORDER BY id"
        )


class SnowflakeSource(SourceDB):
    """A Snowflake database (one per session, schema PUBLIC); names are quoted, so case is kept."""

    db_type = "snowflake"
    # The emulator stores NULL in a TIMESTAMP column but serves it as 1970-01-01 (fakesnow 0.12).
    null_timestamps = False

    def __init__(self, url: str) -> None:
        import snowflake.connector

        self.url = url
        parts = urlsplit(url)
        self.query = dict(parse_qsl(parts.query))
        self.database = parts.path.lstrip("/")
        self.conn = snowflake.connector.connect(
            user=parts.username,
            password=parts.password,
            host=parts.hostname,
            port=parts.port,
            database=self.database,
            schema="PUBLIC",
            **self.query,
        )

    def config(self) -> SourceConfig:
        parts = urlsplit(self.url)
        options = {k: v for k, v in self.query.items() if k != "account"}
        return SourceConfig(
            db_config_key="test_snowflake",
            db_type="snowflake",
            kv_scope="literal",
            config={
                "host": parts.hostname,
                "port": parts.port,
                "account": self.query["account"],
                "database": self.database,
                "schema": "PUBLIC",
                "user": parts.username,
                "password": parts.password,
                "options": options,
            },
        )

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> None:
        self.conn.cursor().execute(sql, params)

    def fetch(self, sql: str) -> list[dict[str, Any]]:
        cur = self.conn.cursor().execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def events_ddl(self, table: str) -> str:
        q = self.quote
        return (
            f"CREATE TABLE {table} ({q('id')} NUMBER(18, 0), {q(ODD)} VARCHAR, {q('amount')} NUMBER(12, 2), "
            f"{q('updated_at')} TIMESTAMP_TZ, {q('event_date')} DATE)"
        )

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [
            normalise(r) for r in self.fetch(f"SELECT * FROM {self.quote(table)} ORDER BY {self.quote('id')}")
        ]


def load_full(config: SourceConfig, table: str, lake_root: Path, *, key: str = "id", rows: int) -> pa.Table:
    """Load `table` with strategy full (asserting `rows` rows were read); the Delta table, sorted by `key`."""
    request = LoadRequest(
        control_key=f"{config.db_type}.{table}",
        load_strategy="full",
        source_schema=None,
        source_table=table,
        destination_table=f"bronze/{config.db_type}/{re.sub(r'[^A-Za-z0-9_]', '_', table)}",
        source=config,
        lake_root=str(lake_root),
        primary_keys=(key,),
    )
    assert run_load(request).rows_read == rows
    return DeltaSession(table_uri(lake_root, request.destination_table)).read_arrow().sort_by(key)
