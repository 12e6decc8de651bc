"""SQL Server and Oracle readers without a server (none runs here): SQL generation, quoting, the type
map from catalog rows, and the missing-driver error naming db_type and the extra to install; the
literal renderers of the dialects added with them."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from dataloader_contract.errors import ConfigurationError, UnsupportedTypeError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import open_reader
from pipes_workers.sources.base import Condition, RowFilter, SourceColumn
from pipes_workers.sources.drivers import missing_driver
from pipes_workers.sources.literals import (
    clickhouse_literal,
    mssql_literal,
    oracle_literal,
    snowflake_literal,
)
from pipes_workers.sources.mssql import MSSQLReader, columns_from_catalog
from pipes_workers.sources.mssql import quote_mssql_identifier as q_ms
from pipes_workers.sources.oracle import OracleReader
from pipes_workers.sources.oracle import arrow_type_for as oracle_type
from pipes_workers.sources.oracle import quote_oracle_identifier as q_ora

MS = SourceConfig(
    "ms",
    "mssql",
    "literal",
    {"host": "db.example", "database": "erp", "user": "sa", "password": "Pl4nted-ms"},
)
ORA = SourceConfig(
    "ora",
    "oracle",
    "literal",
    {"host": "db.example", "database": "ORCL", "user": "scott", "password": "t1ger-pw"},
)


def test_identifiers_are_quoted() -> None:
    assert q_ms("a]b [c]") == "[a]]b [c]]]"
    assert q_ora('Mixed "Case"') == '"Mixed ""Case"""'
    with pytest.raises(ConfigurationError, match="NUL"):
        q_ms("a\x00b")


def test_mssql_select_and_catalog_sql() -> None:
    with open_reader(MS) as reader:
        assert isinstance(reader, MSSQLReader)
        columns = [
            SourceColumn("id", "bigint", pa.int64()),
            SourceColumn("amount]x", "decimal", pa.decimal128(12, 2)),
            SourceColumn("at", "datetimeoffset", pa.timestamp("us", tz="UTC")),
        ]
        row_filter = RowFilter((Condition("at", ">", datetime(2024, 1, 1, tzinfo=UTC)),), or_null_column="at")
        assert reader.select_sql("sales", "order's", columns, row_filter) == (
            "SELECT [id] AS [id], CAST([amount]]x] AS NVARCHAR(MAX)) AS [amount]]x], "
            "CAST(SWITCHOFFSET([at], '+00:00') AS DATETIME2(7)) AS [at] FROM [sales].[order's] "
            "WHERE ([at] > CAST('2024-01-01 00:00:00.000000+00:00' AS DATETIMEOFFSET(7))) OR [at] IS NULL"
        )
        assert "TABLE_SCHEMA = N'dbo' AND TABLE_NAME = N'o''x'" in reader.columns_sql(None, "o'x")
        assert "Pl4nted-ms" not in repr(reader.params)


def test_mssql_types_from_catalog_rows() -> None:
    rows = [
        ("a", "bit", None, None), ("b", "tinyint", 3, 0), ("c", "decimal", 38, 10), ("d", "money", 19, 4),
        ("e", "datetime2", None, None), ("f", "datetimeoffset", None, None), ("g", "uniqueidentifier", None, None),
        ("h", "nvarchar", None, None), ("i", "varbinary", None, None), ("j", "date", None, None),
    ]  # fmt: skip
    catalog = [
        {"COLUMN_NAME": n, "DATA_TYPE": t, "NUMERIC_PRECISION": p, "NUMERIC_SCALE": s, "IS_NULLABLE": "YES"}
        for n, t, p, s in rows
    ]
    assert [c.arrow_type for c in columns_from_catalog("[dbo].[t]", catalog)] == [
        pa.bool_(), pa.int16(), pa.decimal128(38, 10), pa.decimal128(19, 4), pa.timestamp("us"),
        pa.timestamp("us", tz="UTC"), pa.string(), pa.string(), pa.binary(), pa.date32(),
    ]  # fmt: skip
    bad = [
        {
            "COLUMN_NAME": "shape",
            "DATA_TYPE": "geography",
            "NUMERIC_PRECISION": None,
            "NUMERIC_SCALE": None,
            "IS_NULLABLE": "YES",
        }
    ]
    with pytest.raises(
        UnsupportedTypeError, match=r"source table \[dbo\]\.\[t\]: column 'shape' has type 'geography'"
    ):
        columns_from_catalog("[dbo].[t]", bad)


def test_oracle_select_sql_and_types() -> None:
    with open_reader(ORA) as reader:
        assert isinstance(reader, OracleReader)
        columns = [
            SourceColumn("ID", "NUMBER", pa.int64()),
            SourceColumn("at", "TIMESTAMP(6) WITH TIME ZONE", pa.timestamp("us", tz="UTC")),
        ]
        row_filter = RowFilter((Condition("ID", ">=", 5), Condition("at", "<", date(2024, 1, 2))))
        assert reader.select_sql(None, "Orders", columns, row_filter) == (
            'SELECT "ID" AS "ID", SYS_EXTRACT_UTC("at") AS "at" FROM "SCOTT"."Orders" '
            """WHERE "ID" >= 5 AND "at" < DATE '2024-01-02'"""
        )
    assert oracle_type("t", "c", "NUMBER", 10, 0) == pa.int64()
    assert oracle_type("t", "c", "NUMBER", 38, 4) == pa.decimal128(38, 4)
    assert oracle_type("t", "c", "DATE", None, None) == pa.timestamp("us")
    assert oracle_type("t", "c", "TIMESTAMP(6) WITH LOCAL TIME ZONE", None, None) == pa.timestamp(
        "us", tz="UTC"
    )
    for spec in ("NUMBER", "TIMESTAMP(9)", "SDO_GEOMETRY", "INTERVAL DAY(2) TO SECOND(6)"):
        with pytest.raises(
            UnsupportedTypeError, match=re.escape(f"source table t: column 'c' has type '{spec}'")
        ):
            oracle_type("t", "c", spec, None, None)


@pytest.mark.parametrize(
    ("config", "module", "extra"),
    [(ORA, "oracledb", "dataloader[oracle]"), (MS, "connectorx", "dataloader[mssql]")],
)
def test_a_missing_driver_names_the_db_type_and_the_extra(
    monkeypatch: pytest.MonkeyPatch, config: SourceConfig, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    with pytest.raises(ConfigurationError) as err:
        open_reader(config)
    assert f"db_type '{config.db_type}'" in str(err.value) and extra in str(err.value)
    assert config.config["password"] not in str(err.value)


@pytest.mark.parametrize(
    ("render", "value", "expected"),
    [
        (clickhouse_literal, "a'b\\c", "'a\\'b\\\\c'"),
        (clickhouse_literal, Decimal("12.340"), "toDecimal128('12.340', 3)"),
        (clickhouse_literal, datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))), "toDateTime('2024-01-01 00:00:00', 'UTC')"),
        (clickhouse_literal, datetime(2024, 1, 1, 0, 0, 0, 5), "toDateTime64('2024-01-01 00:00:00.000005', 6, 'UTC')"),
        (clickhouse_literal, True, "1"),
        (snowflake_literal, "it's \\", "'it''s \\\\'"),
        (snowflake_literal, datetime(2024, 1, 1, tzinfo=UTC), "'2024-01-01 00:00:00.000000+00:00'::TIMESTAMP_TZ"),
        (snowflake_literal, time(1, 2, 3), "'01:02:03.000000'::TIME"),
        (mssql_literal, 2**63, f"CAST({2**63} AS DECIMAL(38, 0))"),
        (mssql_literal, "it's", "N'it''s'"),
        (oracle_literal, datetime(2024, 1, 1, tzinfo=UTC), "TIMESTAMP '2024-01-01 00:00:00.000000 +00:00'"),
        (oracle_literal, 1.5, "TO_BINARY_DOUBLE('1.5')"),
    ],
)  # fmt: skip
def test_literals_per_dialect(render: Callable[[object], str], value: object, expected: str) -> None:
    assert render(value) == expected


@pytest.mark.parametrize("render", [clickhouse_literal, snowflake_literal, mssql_literal, oracle_literal])
def test_bad_filter_values_are_refused_in_every_dialect(render: Callable[[object], str]) -> None:
    for value in (float("inf"), Decimal("NaN"), "nul\x00", b"bytes", time(1, tzinfo=UTC)):
        with pytest.raises(ConfigurationError):
            render(value)


def test_missing_driver_is_reported_without_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        missing_driver("postgresql") is None and missing_driver("mssql") is None
    )  # connectorx is a base dependency
    monkeypatch.setitem(sys.modules, "oracledb", None)
    assert missing_driver("oracle") == (
        "db_type 'oracle' needs the driver module 'oracledb': pip install 'dataloader[oracle]' (oracledb)"
    )


def test_config_keys_each_reader_needs_are_checked() -> None:
    no_host = SourceConfig("ora", "oracle", "literal", {"database": "ORCL"})
    with pytest.raises(
        ConfigurationError, match="ora: db_type 'oracle' needs db_config_value key\\(s\\) host"
    ):
        open_reader(no_host)
    with pytest.raises(ConfigurationError, match="unknown oracle option\\(s\\) mode"):
        open_reader(SourceConfig("ora", "oracle", "literal", {**ORA.config, "options": {"mode": "x"}}))
