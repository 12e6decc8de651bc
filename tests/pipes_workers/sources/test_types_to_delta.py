"""The type round-trip tables of the reader tests, loaded end to end (run_load → Delta on disk) and
compared row by row with the source: what lands in Delta is what the source holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import time
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pymysql
import pytest
from test_mysql_reader import DDL as MARIA_DDL
from test_mysql_reader import EXPECTED_TYPES as MARIA_TYPES
from test_mysql_reader import ROW1 as MARIA_ROW1
from test_mysql_reader import ROW2 as MARIA_ROW2
from test_mysql_reader import _exec, _insert
from test_postgres_reader import EXPECTED_TYPES as PG_TYPES
from test_postgres_reader import ROWS as PG_ROWS
from test_postgres_reader import TYPES_DDL as PG_DDL

from dataloader_contract.request import LoadRequest, SourceConfig, table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load


def _load(config: SourceConfig, lake_root: Path, strategy: str) -> list[dict[str, Any]]:
    request = LoadRequest(
        control_key=f"types.{config.db_type}",
        load_strategy=strategy,
        source_schema=None,
        source_table="rt_types",
        destination_table=f"bronze/types/{config.db_type}",
        source=config,
        lake_root=str(lake_root),
        primary_keys=("id",),
        incremental_column="id",
    )
    result = run_load(request)
    assert result.rows_read == 3
    table = DeltaSession(table_uri(lake_root, request.destination_table)).read_arrow()
    return table.sort_by("id").to_pylist()


def _as_stored(value: Any) -> Any:
    """Delta has no time-of-day type: times are stored as fixed-width `HH:MM:SS.ffffff` text."""
    return value.isoformat(timespec="microseconds") if isinstance(value, time) else value


@pytest.fixture
def pg_types(pg_conn: psycopg.Connection) -> Iterator[list[dict[str, Any]]]:
    pg_conn.execute(PG_DDL)
    pg_conn.execute("INSERT INTO rt_types VALUES " + ", ".join(PG_ROWS))
    pg_conn.execute("SET IntervalStyle = 'iso_8601'")
    cur = pg_conn.execute(
        "SELECT id, n, money, ts, tsn, d, t, b, i2, i4, i8, f4, f8, txt, vc, ch, by, u::text, j::text, jb::text,"
        " ai, at, iv::text, mood::text FROM rt_types ORDER BY id"
    )
    rows = [dict(zip(PG_TYPES, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["by"] = bytes(row["by"]) if row["by"] is not None else None
    yield rows
    pg_conn.execute("DROP TABLE rt_types; DROP TYPE rt_mood; DROP DOMAIN rt_money")


@pytest.fixture
def maria_types(maria_conn: pymysql.connections.Connection) -> Iterator[list[dict[str, Any]]]:
    _exec(maria_conn, "DROP TABLE IF EXISTS rt_types")
    _exec(maria_conn, MARIA_DDL)
    for row in (MARIA_ROW1, MARIA_ROW2, {"id": 3}):
        _insert(maria_conn, "rt_types", row)
    yield [MARIA_ROW1, MARIA_ROW2, {name: (3 if name == "id" else None) for name in MARIA_TYPES}]
    _exec(maria_conn, "DROP TABLE rt_types")


@pytest.mark.parametrize("strategy", ["full", "incremental"])
@pytest.mark.parametrize(("rows", "config"), [("pg_types", "pg_config"), ("maria_types", "maria_config")])
def test_types_land_in_delta_unchanged(
    request: pytest.FixtureRequest, lake_root: Path, rows: str, config: str, strategy: str
) -> None:
    source_rows = request.getfixturevalue(rows)
    landed = _load(request.getfixturevalue(config), lake_root, strategy)
    assert [{k: _as_stored(v) for k, v in row.items()} for row in source_rows] == landed
    assert landed[0]["t"] == "23:59:59.999999" and landed[1]["t"] == "00:00:00.000000"


def test_delta_schema_keeps_the_mapped_types(
    pg_types: list[dict[str, Any]], pg_config: SourceConfig, lake_root: Path
) -> None:
    _load(pg_config, lake_root, "full")
    schema = DeltaSession(table_uri(lake_root, "bronze/types/postgresql")).read_arrow().schema
    assert schema.field("n").type == pa.decimal128(38, 10)
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("tsn").type == pa.timestamp("us")
    assert schema.field("i2").type == pa.int16() and schema.field("f4").type == pa.float32()
    assert pa.types.is_string(schema.field("t").type) or pa.types.is_large_string(schema.field("t").type)
