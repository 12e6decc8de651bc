"""MariaDB reader against the real server: types row by row, filters, aggregates, quoting, errors."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pyarrow as pa
import pymysql
import pytest

from dataloader_contract.errors import PermanentLoadError, TransientLoadError, UnsupportedTypeError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import Aggregate, Condition, RowFilter, SourceReader, arrow_schema, open_reader

DDL = """
CREATE TABLE rt_types (
    id BIGINT PRIMARY KEY, n DECIMAL(38,10), ts TIMESTAMP(6) NULL, dt DATETIME(6), d DATE, t TIME(6),
    b BOOLEAN, i1 TINYINT, u1 TINYINT UNSIGNED, i2 SMALLINT, i4 INT, u4 INT UNSIGNED, i8 BIGINT,
    u8 BIGINT UNSIGNED, f8 DOUBLE, txt TEXT, vc VARCHAR(20), bl BLOB, vb VARBINARY(8), j JSON,
    e ENUM('ok','sad'), s SET('x','y'), bit1 BIT(1), bit5 BIT(5), yr YEAR, uid CHAR(36)
) CHARACTER SET utf8mb4
"""
EXPECTED_TYPES = {
    "id": pa.int64(), "n": pa.decimal128(38, 10), "ts": pa.timestamp("us", tz="UTC"), "dt": pa.timestamp("us"),
    "d": pa.date32(), "t": pa.time64("us"), "b": pa.bool_(), "i1": pa.int8(), "u1": pa.int16(),
    "i2": pa.int16(), "i4": pa.int32(), "u4": pa.int64(), "i8": pa.int64(), "u8": pa.decimal128(20, 0),
    "f8": pa.float64(), "txt": pa.string(), "vc": pa.string(), "bl": pa.binary(), "vb": pa.binary(),
    "j": pa.string(), "e": pa.string(), "s": pa.string(), "bit1": pa.bool_(), "bit5": pa.int64(),
    "yr": pa.int16(), "uid": pa.string(),
}  # fmt: skip
ROW1 = {
    "id": 1, "n": Decimal("9999999999999999999999999999.9999999999"),
    "ts": datetime(2024, 3, 31, 0, 59, 59, 999999, tzinfo=UTC), "dt": datetime(2024, 3, 31, 2, 30, 0, 1),
    "d": date(2024, 2, 29), "t": time(23, 59, 59, 999999), "b": True, "i1": -128, "u1": 255, "i2": -32768,
    "i4": -2147483648, "u4": 4294967295, "i8": -9223372036854775808, "u8": Decimal("18446744073709551615"),
    "f8": -2.5e300, "txt": "héllo wörld 😀 中文", "vc": "", "bl": b"\x00\xff\x10", "vb": b"", "j": '{"k": [1, 2]}',
    "e": "sad", "s": "x,y", "bit1": True, "bit5": 21, "yr": 2024, "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
}  # fmt: skip
ROW2 = {
    **ROW1, "id": 2, "n": Decimal("-0.0000000001"), "ts": datetime(2024, 3, 31, 1, 0, 0, 1, tzinfo=UTC),
    "dt": datetime(1970, 1, 1), "t": time(0), "b": False, "i8": 9223372036854775807, "u8": Decimal(0),
    "txt": "", "vc": "x'y\\z\"", "bit1": False, "bit5": 0,
}  # fmt: skip


def _insert(conn: pymysql.connections.Connection, table: str, row: dict[str, object]) -> None:
    cols = ", ".join(f"`{k}`" for k in row)
    values = [
        v.astimezone(UTC).replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v
        for v in row.values()
    ]
    values = [
        int(v) if k in ("bit1", "bit5") and v is not None else v for k, v in zip(row, values, strict=True)
    ]
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(row))})", values)


def _exec(conn: pymysql.connections.Connection, sql: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql)


@pytest.fixture
def types_table(maria_conn: pymysql.connections.Connection) -> Iterator[str]:
    _exec(maria_conn, "DROP TABLE IF EXISTS rt_types")
    _exec(maria_conn, DDL)
    for row in (ROW1, ROW2, {"id": 3}):
        _insert(maria_conn, "rt_types", row)
    yield "rt_types"
    _exec(maria_conn, "DROP TABLE rt_types")


def _read_all(
    reader: SourceReader, table: str, row_filter: RowFilter | None = None, **kw: object
) -> pa.Table:
    columns = reader.columns(None, table)
    batches = list(reader.read(None, table, columns=columns, row_filter=row_filter, **kw))
    for batch in batches:
        assert batch.schema == arrow_schema(columns)
    return pa.Table.from_batches(batches, schema=arrow_schema(columns))


def test_catalog_types(maria_reader: SourceReader, types_table: str) -> None:
    columns = maria_reader.columns(None, types_table)
    assert {c.name: c.arrow_type for c in columns} == EXPECTED_TYPES
    assert columns[0].nullable is False and columns[1].nullable is True


def test_types_round_trip_row_by_row(maria_reader: SourceReader, types_table: str) -> None:
    rows = _read_all(maria_reader, types_table).sort_by("id").to_pylist()
    assert rows[0] == ROW1
    assert rows[1] == ROW2
    assert rows[2] == {name: (3 if name == "id" else None) for name in EXPECTED_TYPES}


def test_timestamp_ignores_the_server_session_zone(
    maria_reader: SourceReader, maria_conn: pymysql.connections.Connection
) -> None:
    _exec(maria_conn, "DROP TABLE IF EXISTS rt_tz")
    _exec(maria_conn, "CREATE TABLE rt_tz (id INT, ts TIMESTAMP(6) NULL)")
    _exec(maria_conn, "SET time_zone = '+05:30'")
    _exec(maria_conn, "INSERT INTO rt_tz VALUES (1, '2024-06-01 05:30:00.000001')")
    assert _read_all(maria_reader, "rt_tz").column("ts").to_pylist() == [
        datetime(2024, 6, 1, 0, 0, 0, 1, tzinfo=UTC)
    ]
    assert maria_reader.aggregate(None, "rt_tz", [Aggregate("max", "ts")]) == (
        datetime(2024, 6, 1, 0, 0, 0, 1, tzinfo=UTC),
    )
    _exec(maria_conn, "DROP TABLE rt_tz")


def test_filters_at_microsecond_precision(
    maria_reader: SourceReader, maria_conn: pymysql.connections.Connection
) -> None:
    _exec(maria_conn, "DROP TABLE IF EXISTS rt_filter")
    _exec(
        maria_conn,
        "CREATE TABLE rt_filter (id INT, ts TIMESTAMP(6) NULL, dt DATETIME(6), name TEXT, amount DECIMAL(12,2))",
    )
    _exec(
        maria_conn,
        "INSERT INTO rt_filter VALUES (1, '2024-01-01 00:00:00.000001', '2024-01-01 00:00:00.000001', 'a', 1.10),"
        " (2, '2024-01-01 00:00:00.000002', '2024-01-01 00:00:00.000002', 'O\\'Brien\\\\x', 2.20),"
        " (3, '2024-01-01 00:00:00.000003', '2024-01-01 00:00:00.000003', 'c', 3.30), (4, NULL, NULL, NULL, NULL)",
    )
    t1 = datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    t3 = datetime(2024, 1, 1, 0, 0, 0, 3, tzinfo=UTC)

    def ids(*conds: Condition, or_null: str | None = None) -> list[int]:
        return sorted(
            _read_all(maria_reader, "rt_filter", RowFilter(conds, or_null)).column("id").to_pylist()
        )

    assert ids(Condition("ts", ">", t1)) == [2, 3]
    assert ids(Condition("ts", ">=", t1)) == [1, 2, 3]
    assert ids(Condition("ts", ">=", t1), Condition("ts", "<=", t3)) == [1, 2, 3]
    assert ids(Condition("ts", ">", t1), or_null="ts") == [2, 3, 4]
    assert ids(Condition("dt", ">", t1.replace(tzinfo=None))) == [2, 3]
    assert ids(Condition("name", "=", "O'Brien\\x")) == [2]
    assert ids(Condition("amount", ">=", Decimal("2.20"))) == [2, 3]
    aggregates = [
        Aggregate("min", "dt"),
        Aggregate("max", "dt"),
        Aggregate("count"),
        Aggregate("max", "amount"),
    ]
    assert maria_reader.aggregate(None, "rt_filter", aggregates) == (
        t1.replace(tzinfo=None), t3.replace(tzinfo=None), 4, Decimal("3.30"),
    )  # fmt: skip
    empty = RowFilter((Condition("ts", ">", t3),))
    assert maria_reader.aggregate(None, "rt_filter", aggregates, empty) == (None, None, 0, None)
    _exec(maria_conn, "DROP TABLE rt_filter")


def test_awkward_identifiers_are_quoted(
    maria_reader: SourceReader, maria_conn: pymysql.connections.Connection
) -> None:
    _exec(maria_conn, 'CREATE TABLE `we"ird; ``table` (id INT, `Mixed Case "col"` TEXT)')
    _exec(maria_conn, "INSERT INTO `we\"ird; ``table` VALUES (1, 'x'), (2, 'y')")
    table, column = 'we"ird; `table', 'Mixed Case "col"'
    columns = maria_reader.columns(None, table)
    assert [c.name for c in columns] == ["id", column]
    stream = maria_reader.read(
        None, table, columns=columns, row_filter=RowFilter((Condition(column, ">", "x"),))
    )
    assert stream.read_all().to_pylist() == [{"id": 2, column: "y"}]
    assert maria_reader.aggregate(None, table, [Aggregate("max", column), Aggregate("count")]) == ("y", 2)
    _exec(maria_conn, 'DROP TABLE `we"ird; ``table`')


def test_missing_table_is_permanent(maria_reader: SourceReader, maria_config: SourceConfig) -> None:
    database = maria_config.config["database"]
    with pytest.raises(
        PermanentLoadError, match=rf"^source table `{database}`.`no_such_table` does not exist$"
    ):
        maria_reader.columns(None, "no_such_table")


def test_out_of_range_values_fail_naming_the_column(
    maria_reader: SourceReader, maria_conn: pymysql.connections.Connection
) -> None:
    _exec(maria_conn, "DROP TABLE IF EXISTS rt_bad")
    _exec(maria_conn, "CREATE TABLE rt_bad (id INT, t TIME, flag TINYINT(1), big DECIMAL(50,2))")
    with pytest.raises(UnsupportedTypeError, match="column 'big' has type 'decimal\\(50,2\\)'"):
        maria_reader.columns(None, "rt_bad")
    _exec(maria_conn, "ALTER TABLE rt_bad DROP COLUMN big")
    _exec(maria_conn, "INSERT INTO rt_bad VALUES (1, '-01:00:00', 0)")
    with pytest.raises(PermanentLoadError, match="column 't' holds a time outside"):
        _read_all(maria_reader, "rt_bad")
    _exec(maria_conn, "UPDATE rt_bad SET t = '01:00:00', flag = 7")
    with pytest.raises(PermanentLoadError, match="column 'flag' is declared boolean"):
        _read_all(maria_reader, "rt_bad")
    _exec(maria_conn, "DROP TABLE rt_bad")


def test_stream_arrives_in_batches(
    maria_reader: SourceReader, maria_conn: pymysql.connections.Connection
) -> None:
    _exec(maria_conn, "DROP TABLE IF EXISTS rt_big")
    _exec(maria_conn, "CREATE TABLE rt_big (id BIGINT PRIMARY KEY, p VARCHAR(100))")
    _exec(maria_conn, "SET SESSION max_recursive_iterations = 400000")
    _exec(
        maria_conn,
        "INSERT INTO rt_big WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300000)"
        " SELECT n, REPEAT('x', 60) FROM g",
    )
    columns = maria_reader.columns(None, "rt_big")
    rows = batches = 0
    for batch in maria_reader.read(None, "rt_big", columns=columns, batch_rows=10_000):
        assert batch.num_rows <= 10_000 and batch.schema == arrow_schema(columns)
        rows, batches = rows + batch.num_rows, batches + 1
    assert rows == 300_000 and batches >= 30
    _exec(maria_conn, "DROP TABLE rt_big")


PLANTED = "Pl4nted-pw-m4ria"


def _failure_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_wrong_password_is_permanent_and_hidden(maria_config: SourceConfig) -> None:
    bad = SourceConfig(
        "m", "mariadb", "literal", {**maria_config.config, "user": "dl_nobody", "password": PLANTED}
    )
    with pytest.raises(PermanentLoadError) as info:
        open_reader(bad)
    assert "source 'm'" in str(info.value) and PLANTED not in _failure_text(info.value)


def test_refused_is_transient_and_hidden(maria_config: SourceConfig) -> None:
    bad = SourceConfig("m", "mysql", "literal", {**maria_config.config, "port": 1, "password": PLANTED})
    with pytest.raises(TransientLoadError) as info:
        open_reader(bad)
    assert PLANTED not in _failure_text(info.value)


def test_password_with_url_characters_reaches_both_drivers(
    maria_config: SourceConfig, maria_conn: pymysql.connections.Connection
) -> None:
    password = "p@ss/w%rd:x?#&'" + PLANTED
    user = "dl_pw_test"
    database = maria_config.config["database"]
    for host in ("%", "localhost"):
        with maria_conn.cursor() as cur:
            cur.execute("CREATE OR REPLACE USER %s@%s IDENTIFIED BY %s", (user, host, password))
            cur.execute(f"GRANT ALL ON `{database}`.* TO %s@%s", (user, host))
    try:
        _exec(maria_conn, "CREATE TABLE rt_pw (id INT)")
        _exec(maria_conn, "INSERT INTO rt_pw VALUES (1), (2)")
        config = SourceConfig(
            "m", "mariadb", "literal", {**maria_config.config, "user": user, "password": password}
        )
        with open_reader(config) as reader:
            columns = reader.columns(None, "rt_pw")
            assert reader.read(None, "rt_pw", columns=columns).read_all().num_rows == 2
        wrong = SourceConfig("m", "mariadb", "literal", {**config.config, "password": password + "x"})
        with pytest.raises(PermanentLoadError) as info:
            open_reader(wrong)
        assert PLANTED not in _failure_text(info.value)
    finally:
        for host in ("%", "localhost"):
            with maria_conn.cursor() as cur:
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
        _exec(maria_conn, "DROP TABLE IF EXISTS rt_pw")
