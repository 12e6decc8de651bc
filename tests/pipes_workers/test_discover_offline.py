"""Discovery without a server: the SQL Server and Oracle catalog SQL parses (sqlglot), catalog rows
shaped like theirs become the expected proposals, and the proposal and naming rules one by one."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot

from pipes_workers.discovery import (
    catalog_clickhouse,
    catalog_mssql,
    catalog_mysql,
    catalog_oracle,
    catalog_postgres,
    catalog_snowflake,
)
from pipes_workers.discovery.catalog import CatalogColumn, CatalogRows, CatalogTable
from pipes_workers.discovery.inserts import control_rows, folder_segment
from pipes_workers.discovery.proposal import propose, watermark_column
from pipes_workers.discovery.settings import DiscoverSettings

SETTINGS = DiscoverSettings(full_below_rows=1000, backfill_above_bytes=10**9, chunk_size=50_000)


@pytest.mark.parametrize(
    ("dialect", "statements"),
    [
        ("tsql", catalog_mssql.catalog_sql("sales'; --")),
        ("oracle", (catalog_oracle.TABLES_SQL, catalog_oracle.COLUMNS_SQL, catalog_oracle.KEYS_SQL)),
        ("postgres", (catalog_postgres.TABLES_SQL, catalog_postgres.KEYS_SQL)),
        ("mysql", (catalog_mysql.TABLES_SQL, catalog_mysql.COLUMNS_SQL, catalog_mysql.INDEXES_SQL)),
        (
            "clickhouse",
            (catalog_clickhouse.TABLES_SQL, catalog_clickhouse.PARTS_SQL, catalog_clickhouse.COLUMNS_SQL),
        ),
        ("snowflake", (catalog_snowflake.TABLES_SQL, catalog_snowflake.COLUMNS_SQL)),
    ],
)
def test_catalog_sql_parses(dialect: str, statements: tuple[str, ...]) -> None:
    for sql in statements:
        text = sql.replace("%(schema)s", "'s'").replace("%(database)s", "'d'").replace("%%", "%")
        parsed = sqlglot.parse(text, read=dialect, error_level=sqlglot.ErrorLevel.RAISE)
        assert len(parsed) == 1 and parsed[0] is not None


def test_mssql_schema_name_is_a_literal() -> None:
    tables_sql, _, _ = catalog_mssql.catalog_sql("sales'; --")
    assert "N'sales''; --'" in tables_sql


MSSQL_TABLES = [("Orders", 5_000_000, 2 * 10**9), ("Countries", 250, 65_536), ("Audit", 90_000, 10**7),
                ("Geo", 10, 8192)]  # fmt: skip
MSSQL_COLUMNS = [
    ("Audit", "AuditId", "bigint", 19, 0, False, True, 1),
    ("Audit", "Message", "nvarchar", 0, 0, True, False, 0),
    ("Countries", "Code", "char", 0, 0, False, False, 1),
    ("Countries", "Name", "nvarchar", 0, 0, False, False, 0),
    ("Geo", "Id", "int", 10, 0, False, False, 1),
    ("Geo", "Shape", "geography", 0, 0, True, False, 0),
    ("Orders", "OrderId", "int", 10, 0, False, True, 1),
    ("Orders", "Total", "decimal", 12, 2, False, False, 0),
    ("Orders", "CreatedAt", "datetime2", 27, 7, False, False, 1),
    ("Orders", "ModifiedAt", "datetime2", 27, 7, False, False, 1),
]
MSSQL_KEYS = [
    ("Audit", 1, True, 1, "AuditId"),
    ("Countries", 2, False, 1, "Code"),
    ("Orders", 1, True, 1, "OrderId"),
]


def test_mssql_rows_to_proposals() -> None:
    tables = {
        t.name: t
        for t in catalog_mssql.tables_from_rows("dbo", CatalogRows(MSSQL_TABLES, MSSQL_COLUMNS, MSSQL_KEYS))
    }
    found = {name: propose(t, SETTINGS) for name, t in tables.items()}
    assert {n: p.load_strategy for n, p in found.items()} == {
        "Audit": "append_only",  # identity key, no timestamp
        "Countries": "full",
        "Geo": None,  # geography is refused
        "Orders": "chunked_backfill",  # 2 GB
    }
    assert (found["Orders"].chunk_column, found["Orders"].incremental_column) == ("OrderId", "ModifiedAt")
    assert found["Orders"].chunk_size == 50_000
    assert found["Audit"].load_strategy == "append_only" and found["Audit"].incremental_column == "AuditId"
    assert found["Countries"].load_strategy == "full" and tables["Countries"].key_origin == "unique index"
    assert found["Geo"].load_strategy is None and "'Shape'" in (found["Geo"].skip_reason or "")


ORACLE_TABLES = [("EMP", 120_000, 9_000_000), ("DEPT", None, None), ("LOG", 3_000_000, 4 * 10**8)]
ORACLE_COLUMNS = [
    ("DEPT", "DEPTNO", "NUMBER", 4, 0, "N", "NO", 1),
    ("DEPT", "DNAME", "VARCHAR2", None, None, "Y", "NO", 0),
    ("EMP", "EMPNO", "NUMBER", 10, 0, "N", "NO", 1),
    ("EMP", "ENAME", "VARCHAR2", None, None, "Y", "NO", 0),
    ("EMP", "HIREDATE", "DATE", None, None, "N", "NO", 1),
    ("EMP", "LAST_UPDATE", "TIMESTAMP(6)", None, None, "N", "NO", 1),
    ("EMP", "SAL", "NUMBER", None, None, "Y", "NO", 0),
    ("LOG", "LOG_ID", "NUMBER", 18, 0, "N", "YES", 1),
    ("LOG", "MSG", "VARCHAR2", None, None, "Y", "NO", 0),
]
ORACLE_KEYS = [
    ("DEPT", "PK_DEPT", 1, 1, "DEPTNO"),
    ("EMP", "PK_EMP", 1, 1, "EMPNO"),
    ("LOG", "PK_LOG", 1, 1, "LOG_ID"),
]


def test_oracle_rows_to_proposals() -> None:
    tables = {
        t.name: t
        for t in catalog_oracle.tables_from_rows(
            "HR", CatalogRows(ORACLE_TABLES, ORACLE_COLUMNS, ORACLE_KEYS)
        )
    }
    found = {name: propose(t, SETTINGS) for name, t in tables.items()}
    assert found["EMP"].load_strategy is None and "'SAL'" in (found["EMP"].skip_reason or "")  # bare NUMBER
    assert found["DEPT"].load_strategy == "full"  # no statistics and no watermark
    assert tables["DEPT"].estimated_rows is None
    assert found["LOG"].load_strategy == "append_only" and found["LOG"].incremental_column == "LOG_ID"
    assert watermark_column(tables["EMP"]).name == "LAST_UPDATE"  # a DATE reads as a timestamp; the name wins


def _col(name: str, arrow_type: pa.DataType, **facts: bool) -> CatalogColumn:
    return CatalogColumn(name, str(arrow_type), arrow_type, **{"nullable": False, "indexed": True, **facts})


TS = pa.timestamp("us", tz="UTC")


def _table(*columns: CatalogColumn, key: tuple[str, ...] = ("id",), rows: int | None = 10**6,
           size: int | None = 10**6) -> CatalogTable:  # fmt: skip
    return CatalogTable("s", "t", rows, size, key, "primary key" if key else "", columns)


def test_timestamps_beat_increasing_integers_and_hints_break_ties() -> None:
    table = _table(_col("id", pa.int64(), increasing=True), _col("created_at", TS), _col("modified", TS))
    assert watermark_column(table).name == "modified"
    table = _table(_col("id", pa.int64(), increasing=True), _col("b", TS), _col("a", TS))
    assert watermark_column(table).name == "b"  # no hint: column order


@pytest.mark.parametrize(
    ("column", "why"),
    [
        (_col("updated_at", TS, nullable=True), "nullable"),
        (_col("updated_at", TS, indexed=False), "not indexed"),
        (_col("updated_at", pa.date32()), "a date"),
        (_col("seq", pa.int64()), "an integer the source does not increment"),
    ],
)
def test_columns_that_are_no_watermark(column: CatalogColumn, why: str) -> None:
    assert watermark_column(_table(_col("id", pa.string()), column)) is None, why


def test_strategy_rules() -> None:
    ident = _col("id", pa.int64(), increasing=True)
    assert propose(_table(ident, _col("updated_at", TS)), SETTINGS).load_strategy == "incremental"
    assert propose(_table(ident), SETTINGS).load_strategy == "append_only"
    # an update-time column that cannot be a watermark: the table changes, append_only would miss it
    assert propose(_table(ident, _col("updated_at", TS, indexed=False)), SETTINGS).load_strategy == "full"
    assert propose(_table(ident, _col("updated_at", TS), rows=999), SETTINGS).load_strategy == "full"
    assert propose(_table(ident, _col("updated_at", TS), rows=None), SETTINGS).load_strategy == "incremental"
    big = propose(_table(ident, _col("updated_at", TS), size=10**10), SETTINGS)
    assert (big.load_strategy, big.chunk_column, big.incremental_column) == (
        "chunked_backfill",
        "id",
        "updated_at",
    )
    text_key = propose(_table(_col("id", pa.string()), _col("updated_at", TS), size=10**10), SETTINGS)
    assert text_key.load_strategy == "incremental"  # nothing to cut into chunks
    assert propose(_table(_col("updated_at", TS), key=()), SETTINGS).load_strategy == "full"


def test_folder_segments_and_collisions() -> None:
    assert folder_segment('Store Hours "2024"') == "store_hours_2024"
    assert folder_segment("_delta_log") == "t_delta_log"
    assert folder_segment("Ünïcode") == "n_code"
    assert folder_segment("!!!") == "t"
    assert len(folder_segment("x" * 400)) == 255
    tables = [_table(_col("id", pa.int64())), _table(_col("id", pa.int64()))]
    named = [
        CatalogTable("public", name, 1, 1, (), "", t.columns)
        for name, t in zip(("Orders", "orders"), tables, strict=True)
    ]
    rows = control_rows(
        "erp",
        [propose(t, SETTINGS) for t in named],
        registered={("public", "skip_me")},
        control_keys=set(),
        destinations={"bronze/erp/public/Orders"},  # compared without case
        cron="0 * * * *",
        activate=False,
    )
    assert [r.values["destination_table"] for r in rows] == [
        "bronze/erp/public/orders_2",
        "bronze/erp/public/orders_3",
    ]
    assert [r.control_key for r in rows] == ["erp.public.Orders", "erp.public.orders"]
    assert all(r.values["is_active"] is False for r in rows)
