"""Snowflake reader against the fakesnow emulator with the real connector: the type matrix loaded into
Delta and compared value by value, refused types named, quoting, missing tables.

What the emulator cannot prove is listed in the README (Sources): it runs on DuckDB, so Snowflake's own
result chunking, TIMESTAMP_TZ offsets, NULL timestamps and error codes are not exercised here."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pytest
from other_sources_support import load_full

from dataloader_contract.errors import ConfigurationError, LoadError, PermanentLoadError, UnsupportedTypeError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import open_reader
from pipes_workers.sources.base import Condition, RowFilter
from pipes_workers.sources.snowflake_types import arrow_type_for

# (column, Snowflake type, Arrow type in Delta, SQL literal, value in Delta)
MATRIX: list[tuple[str, str, pa.DataType, str, Any]] = [
    # the emulator stores NUMBER(38, 0) as a 64-bit integer: Snowflake's 38 digits are not provable here
    ("n38", "NUMBER(38, 0)", pa.decimal128(38, 0), "-9223372036854775808", Decimal(-(2**63))),
    ("n38s", "NUMBER(38, 10)", pa.decimal128(38, 10), "-1234567890123456789012345678.1234567891",
     Decimal("-1234567890123456789012345678.1234567891")),
    ("n18", "NUMBER(18, 0)", pa.int64(), "999999999999999999", 999999999999999999),
    ("f", "FLOAT", pa.float64(), "1.5e300", 1.5e300),
    ("v", "VARCHAR", pa.string(), "'héllo ''quoted'' \\\\ back'", "héllo 'quoted' \\ back"),
    ("b", "BOOLEAN", pa.bool_(), "TRUE", True),
    ("d", "DATE", pa.date32(), "'2024-02-29'::DATE", date(2024, 2, 29)),
    ("t", "TIME", pa.string(), "'23:59:59.999999'::TIME", "23:59:59.999999"),
    ("tn", "TIMESTAMP_NTZ", pa.timestamp("us"), "'2024-01-02 03:04:05.123456'::TIMESTAMP_NTZ",
     datetime(2024, 1, 2, 3, 4, 5, 123456)),
    ("tl", "TIMESTAMP_LTZ", pa.timestamp("us", tz="UTC"), "'2024-01-02 03:04:05.123456+00:00'::TIMESTAMP_LTZ",
     datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)),
    ("tz", "TIMESTAMP_TZ", pa.timestamp("us", tz="UTC"), "'2024-01-02 03:04:05.654321+00:00'::TIMESTAMP_TZ",
     datetime(2024, 1, 2, 3, 4, 5, 654321, tzinfo=UTC)),
    ("bi", "BINARY", pa.binary(), "TO_BINARY('00FF10', 'HEX')", b"\x00\xff\x10"),
    ("va", "VARIANT", pa.string(), "PARSE_JSON('{\"a\": [1, 2.5, null]}')", {"a": [1, 2.5, None]}),
    ("ob", "OBJECT", pa.string(), "OBJECT_CONSTRUCT('k', 'v')", {"k": "v"}),
    ("ar", "ARRAY", pa.string(), "ARRAY_CONSTRUCT(1, 'x')", [1, "x"]),
]  # fmt: skip
JSON_COLUMNS = {"va", "ob", "ar"}


@pytest.fixture
def sf(snowflake_url: str) -> Iterator[Any]:
    import snowflake.connector

    parts = urlsplit(snowflake_url)
    conn = snowflake.connector.connect(
        user=parts.username, password=parts.password, host=parts.hostname, port=parts.port,
        database=parts.path.lstrip("/"), schema="PUBLIC", **dict(parse_qsl(parts.query)),
    )  # fmt: skip
    yield conn.cursor()
    conn.close()


@pytest.fixture
def sf_config(snowflake_url: str) -> SourceConfig:
    parts = urlsplit(snowflake_url)
    query = dict(parse_qsl(parts.query))
    account = query.pop("account")
    config = {
        "host": parts.hostname, "port": parts.port, "account": account, "database": parts.path.lstrip("/"),
        "schema": "PUBLIC", "user": parts.username, "password": parts.password, "options": query,
    }  # fmt: skip
    return SourceConfig("sf", "snowflake", "literal", config)


def test_type_matrix_round_trips_into_delta(sf: Any, sf_config: SourceConfig, lake_root: Path) -> None:
    table = f"types {uuid.uuid4().hex[:6]}"
    sf.execute(
        f'CREATE TABLE "{table}" ("id" NUMBER(18, 0), ' + ", ".join(f'"{n}" {t}' for n, t, *_ in MATRIX) + ")"
    )
    sf.execute(f'INSERT INTO "{table}" SELECT 1, ' + ", ".join(lit for *_, lit, _ in MATRIX))
    sf.execute(f'INSERT INTO "{table}" ("id") VALUES (2)')
    delta = load_full(sf_config, table, lake_root, rows=2)
    first = delta.to_pylist()[0]
    for name, _, arrow_type, _, expected in MATRIX:
        assert delta.schema.field(name).type == arrow_type, name
        value = json.loads(first[name]) if name in JSON_COLUMNS else first[name]
        assert value == expected, name
    second = delta.to_pylist()[1]
    assert [second[n] for n, *_ in MATRIX if n not in ("tn", "tl", "tz")] == [None] * (len(MATRIX) - 3)


def test_time_maps_to_time_of_day() -> None:
    assert arrow_type_for("t", "c", "TIME", None, None) == pa.time64("us")
    assert arrow_type_for("t", "c", "NUMBER", 10, 2) == pa.decimal128(10, 2)
    for spec in ("GEOGRAPHY", "GEOMETRY", "VECTOR"):
        with pytest.raises(UnsupportedTypeError, match=f"source table t: column 'c' has type '{spec}'"):
            arrow_type_for("t", "c", spec, None, None)


def test_quoting_and_filters(sf: Any, sf_config: SourceConfig) -> None:
    table = 'we"ird name'
    sf.execute('CREATE TABLE "we""ird name" ("id" NUMBER(18, 0), "a""b" VARCHAR, "ts" TIMESTAMP_NTZ)')
    sf.execute(
        "INSERT INTO \"we\"\"ird name\" VALUES (1, 'x', '2024-01-01 00:00:00.000001'), (2, 'y', '2024-01-01 00:00:00.000002')"
    )
    with open_reader(sf_config) as reader:
        columns = reader.columns(None, table)
        assert [c.name for c in columns] == ["id", 'a"b', "ts"]
        hostile = RowFilter((Condition('a"b', "=", "x' OR 1 = 1 --"),))
        assert reader.read(None, table, columns=columns, row_filter=hostile).read_all().num_rows == 0
        later = RowFilter((Condition("ts", ">", datetime(2024, 1, 1, 0, 0, 0, 1)),))
        assert reader.read(None, table, columns=columns, row_filter=later).read_all().column(
            "id"
        ).to_pylist() == [2]


def test_missing_table_and_config(sf_config: SourceConfig) -> None:
    with open_reader(sf_config) as reader, pytest.raises(PermanentLoadError, match="does not exist"):
        reader.columns(None, "no such table")
    no_account = SourceConfig(
        "sf", "snowflake", "literal", {k: v for k, v in sf_config.config.items() if k != "account"}
    )
    with pytest.raises(
        ConfigurationError, match="db_type 'snowflake' needs db_config_value key\\(s\\) account"
    ):
        open_reader(no_account)


def test_time_column_values(sf: Any, sf_config: SourceConfig) -> None:
    sf.execute('CREATE TABLE "times" ("id" NUMBER(18, 0), "t" TIME)')
    sf.execute("INSERT INTO \"times\" VALUES (1, '00:00:00'), (2, '12:34:56.5')")
    with open_reader(sf_config) as reader:
        columns = reader.columns(None, "times")
        values = reader.read(None, "times", columns=columns).read_all().sort_by("id").column("t").to_pylist()
    assert values == [time(0, 0), time(12, 34, 56, 500000)]


def test_unreachable_account_fails_without_the_password(sf_config: SourceConfig) -> None:
    dead = SourceConfig(
        "sf",
        "snowflake",
        "literal",
        {
            **sf_config.config,
            "port": 1,
            "password": "s3cret-pw",
            "options": {"protocol": "http", "login_timeout": 2},
        },
    )
    with pytest.raises(LoadError) as err:
        open_reader(dead)
    assert "s3cret-pw" not in str(err.value) and "source 'sf'" in str(err.value)
