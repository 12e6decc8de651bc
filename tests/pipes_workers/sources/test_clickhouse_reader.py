"""ClickHouse reader against a real clickhouse-server: the type matrix loaded into Delta and compared
value by value, refused types named, whole-second filters, aggregates of empty sets, errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pytest
from other_sources_support import load_full

from dataloader_contract.errors import PermanentLoadError, TransientLoadError, UnsupportedTypeError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import open_reader
from pipes_workers.sources.base import Aggregate, Condition, RowFilter
from pipes_workers.sources.clickhouse_types import UINT64, UTC_MICROS, arrow_type_for

# (column, ClickHouse type, Arrow type in Delta, value in row 1, value in row 2)
TOKYO = timezone(timedelta(hours=9))
U1 = uuid.UUID("61f0c404-5cb3-11e7-907b-a6006ad3dba0")
MATRIX: list[tuple[str, str, pa.DataType, Any, Any]] = [
    ("i8", "Int8", pa.int8(), -128, 127),
    ("i16", "Int16", pa.int16(), -32768, 32767),
    ("i32", "Int32", pa.int32(), -(2**31), 2**31 - 1),
    ("i64", "Int64", pa.int64(), -(2**63), 2**63 - 1),
    ("u8", "UInt8", pa.int16(), 0, 255),
    ("u16", "UInt16", pa.int32(), 0, 65535),
    ("u32", "UInt32", pa.int64(), 0, 2**32 - 1),
    ("u64", "UInt64", UINT64, 2**63 + 7, 2**64 - 1),
    ("f32", "Float32", pa.float32(), 1.5, -0.25),
    ("f64", "Float64", pa.float64(), 1e308, 2.2250738585072014e-308),
    ("d38", "Decimal(38, 18)", pa.decimal128(38, 18),
     Decimal("12345678901234567890.123456789012345678"), Decimal("-99999999999999999999.999999999999999999")),
    ("d9", "Decimal(9, 2)", pa.decimal128(9, 2), Decimal("1234567.89"), Decimal("-0.01")),
    ("s", "String", pa.string(), "héllo\n'quoted' \\ tab\t", ""),
    ("fs", "FixedString(4)", pa.binary(), b"a\x00b\x00", b"\xff\xfe\xfd\xfc"),
    ("d", "Date", pa.date32(), date(1970, 1, 1), date(2105, 12, 31)),
    ("ts", "DateTime", UTC_MICROS, datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2037, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ("tsz", "DateTime('Asia/Tokyo')", UTC_MICROS,
     datetime(2024, 1, 2, 12, 4, 5, tzinfo=TOKYO), datetime(2000, 2, 29, 0, 0, 1, tzinfo=TOKYO)),
    ("u", "UUID", pa.string(), U1, uuid.UUID(int=0)),
    ("e8", "Enum8('a' = 1, 'b' = -2)", pa.string(), "a", "b"),
    ("e16", "Enum16('x' = 1000, 'y''s' = 2)", pa.string(), "x", "y's"),
    ("n", "Nullable(Int32)", pa.int32(), None, 5),
    ("ns", "Nullable(String)", pa.string(), "set", None),
    ("lc", "LowCardinality(String)", pa.string(), "low", "card"),
    ("arr", "Array(Int32)", pa.list_(pa.field("element", pa.int32())), [1, -2], []),
    ("arrs", "Array(Nullable(String))", pa.list_(pa.field("element", pa.string())), ["a", None], None),
    ("arr2", "Array(Array(Int8))", pa.list_(pa.field("element", pa.list_(pa.field("element", pa.int8())))), [[1], [2, 3]], [[]]),
    ("arrt", "Array(DateTime)", pa.list_(pa.field("element", UTC_MICROS)), [datetime(2024, 5, 5, 1, 2, 3, tzinfo=UTC)], []),
]  # fmt: skip


def _config(url: str) -> SourceConfig:
    parts = urlsplit(url)
    return SourceConfig(
        db_config_key="ch",
        db_type="clickhouse",
        kv_scope="literal",
        config={
            "host": parts.hostname,
            "port": parts.port,
            "database": parts.path.lstrip("/"),
            "user": "default",
        },
    )


@pytest.fixture
def ch(clickhouse_url: str) -> Iterator[Any]:
    from clickhouse_driver import Client

    parts = urlsplit(clickhouse_url)
    client = Client(
        host=parts.hostname,
        port=parts.port,
        database=parts.path.lstrip("/"),
        settings={"allow_experimental_low_cardinality_type": 1},
    )
    yield client
    client.disconnect()


@pytest.fixture
def ch_config(clickhouse_url: str) -> SourceConfig:
    return _config(clickhouse_url)


def _table(ch: Any, columns: str) -> str:
    name = f"t_{uuid.uuid4().hex[:8]}"
    ch.execute(f"CREATE TABLE `{name}` (id Int64, {columns}) ENGINE = MergeTree ORDER BY id")
    return name


def _driver_value(value: Any, spec: str) -> Any:
    """The value as clickhouse-driver inserts it (aware datetimes as the column's wall clock)."""
    if isinstance(value, datetime):
        zone = TOKYO if "Tokyo" in spec else UTC
        return value.astimezone(zone).replace(tzinfo=None)
    if isinstance(value, list) and spec == "Array(DateTime)":
        return [_driver_value(v, "DateTime") for v in value]
    if spec == "Array(Nullable(String))" and value is None:
        return []
    return value


def _expected(value: Any, spec: str) -> Any:
    """The value as Delta holds it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, uuid.UUID):
        return str(value)
    if spec == "Array(Nullable(String))" and value is None:
        return []
    return value


def test_type_matrix_round_trips_into_delta(ch: Any, ch_config: SourceConfig, lake_root: Path) -> None:
    table = _table(ch, ", ".join(f"`{name}` {spec}" for name, spec, *_ in MATRIX))
    rows = [(i, *(_driver_value(v[3 + i - 1], v[1]) for v in MATRIX)) for i in (1, 2)]
    ch.execute(f"INSERT INTO `{table}` VALUES", rows)
    delta = load_full(ch_config, table, lake_root, rows=2)
    for name, spec, arrow_type, *values in MATRIX:
        assert delta.schema.field(name).type == arrow_type, name
        assert delta.column(name).to_pylist() == [_expected(v, spec) for v in values], name


@pytest.mark.parametrize(
    "spec",
    ["Tuple(Int8, String)", "AggregateFunction(uniq, UInt64)", "Array(Array(Tuple(Int8, String)))"],
)
def test_unmappable_types_are_refused_naming_table_column_and_type(
    ch: Any, ch_config: SourceConfig, spec: str
) -> None:
    table = _table(ch, f"`odd col` {spec}")
    with open_reader(ch_config) as reader, pytest.raises(UnsupportedTypeError) as err:
        reader.columns(None, table)
    message = str(err.value)
    assert table in message and "odd col" in message


def test_types_the_server_may_lack_map_or_are_refused() -> None:
    """DateTime64 and Int128 are newer than Debian's 18.16 server: their mapping is checked from the type text."""
    assert arrow_type_for("t", "c", "DateTime64(6, 'UTC')") == UTC_MICROS
    assert arrow_type_for("t", "c", "Nullable(DateTime64(3))") == UTC_MICROS
    assert arrow_type_for("t", "c", "Bool") == pa.bool_()
    assert arrow_type_for("t", "c", "LowCardinality(Nullable(String))") == pa.string()
    for spec in (
        "DateTime64(9, 'UTC')",
        "Int128",
        "UInt256",
        "Decimal(50, 2)",
        "Map(String, UInt64)",
        "IPv4",
    ):
        with pytest.raises(UnsupportedTypeError, match="source table t: column 'c' has type") as err:
            arrow_type_for("t", "c", spec)
        assert spec in str(err.value)


def test_string_that_is_not_utf8_is_refused_naming_the_column(
    ch: Any, ch_config: SourceConfig, lake_root: Path
) -> None:
    table = _table(ch, "payload String")
    ch.execute(f"INSERT INTO `{table}` VALUES", [(1, "fine"), (2, b"\xff\xfe")])
    with open_reader(ch_config) as reader:
        columns = reader.columns(None, table)
        with pytest.raises(PermanentLoadError, match="column 'payload' holds bytes that are not UTF-8"):
            reader.read(None, table, columns=columns).read_all()


def test_whole_second_bounds_select_exactly_the_same_rows(ch: Any, ch_config: SourceConfig) -> None:
    table = _table(ch, "ts DateTime")
    base = datetime(2024, 1, 1, 12, 0, 0)
    ch.execute(f"INSERT INTO `{table}` VALUES", [(1, base), (2, base + timedelta(seconds=1))])
    bound = datetime(2024, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)
    with open_reader(ch_config) as reader:
        columns = reader.columns(None, table)

        def ids(op: str) -> list[int]:
            stream = reader.read(
                None, table, columns=columns, row_filter=RowFilter((Condition("ts", op, bound),))
            )
            return sorted(stream.read_all().column("id").to_pylist())

        assert ids(">") == [2] and ids(">=") == [2] and ids("<") == [1] and ids("<=") == [1]


def test_aggregates_of_an_empty_set_are_none(ch: Any, ch_config: SourceConfig) -> None:
    table = _table(ch, "ts DateTime, n UInt64")
    with open_reader(ch_config) as reader:
        reader.columns(None, table)
        assert reader.aggregate(
            None, table, [Aggregate("max", "ts"), Aggregate("min", "n"), Aggregate("count")]
        ) == (
            None,
            None,
            0,
        )
        ch.execute(f"INSERT INTO `{table}` VALUES", [(1, datetime(2024, 1, 1), 2**64 - 1)])
        top, low, count = reader.aggregate(
            None, table, [Aggregate("max", "ts"), Aggregate("min", "n"), Aggregate("count")]
        )
        assert (top, low, count) == (datetime(2024, 1, 1, tzinfo=UTC), Decimal(2**64 - 1), 1)


def test_identifiers_are_quoted(ch: Any, ch_config: SourceConfig) -> None:
    name = "we`ird \\ name"
    ch.execute("CREATE TABLE `we\\`ird \\\\ name` (`id` Int64, `a``b` String) ENGINE = Memory")
    ch.execute("INSERT INTO `we\\`ird \\\\ name` VALUES", [(1, "x")])
    with open_reader(ch_config) as reader:
        columns = reader.columns(None, name)
        assert [c.name for c in columns] == ["id", "a`b"]
        row_filter = RowFilter((Condition("a`b", "=", "x' OR 1 = 1 --"),))
        assert reader.read(None, name, columns=columns, row_filter=row_filter).read_all().num_rows == 0
        assert reader.read(None, name, columns=columns).read_all().to_pylist() == [{"id": 1, "a`b": "x"}]


def test_missing_table_and_unreachable_server(ch_config: SourceConfig) -> None:
    with open_reader(ch_config) as reader, pytest.raises(PermanentLoadError, match="does not exist"):
        reader.columns(None, "no_such_table")
    dead = SourceConfig(
        "ch", "clickhouse", "literal", {**ch_config.config, "port": 1, "password": "s3cret-pw"}
    )
    with pytest.raises(TransientLoadError) as err:
        open_reader(dead)
    assert "s3cret-pw" not in str(err.value)


def test_reads_stream_in_blocks_and_closing_the_reader_ends_a_half_read_query(
    ch: Any, ch_config: SourceConfig
) -> None:
    table = _table(ch, "payload String")
    ch.execute(
        f"INSERT INTO `{table}` SELECT number, concat('row ', toString(number)) FROM system.numbers LIMIT 300000"
    )
    running = f"SELECT count() FROM system.processes WHERE query LIKE '%`{table}`%' AND query NOT LIKE '%system.processes%'"
    reader = open_reader(ch_config)
    columns = reader.columns(None, table)
    sizes = [b.num_rows for b in reader.read(None, table, columns=columns, batch_rows=8192)]
    assert sum(sizes) == 300_000 and len(sizes) >= 30 and max(sizes) <= 8192
    stream = reader.read(None, table, columns=columns, batch_rows=1024)
    stream.read_next_batch()
    time.sleep(0.3)
    assert ch.execute(running)[0][0] == 1  # the half-read query is still open on the server
    stream.close()
    reader.close()
    for _ in range(50):  # the server ends the query once it sees the connection gone
        if not ch.execute(running)[0][0]:
            break
        time.sleep(0.1)
    assert ch.execute(running)[0][0] == 0


def test_wrong_password_is_permanent_with_the_server_code_and_no_password(ch_config: SourceConfig) -> None:
    wrong = SourceConfig("ch", "clickhouse", "literal", {**ch_config.config, "password": "Wr0ng-pw-77"})
    with pytest.raises(PermanentLoadError) as err:
        open_reader(wrong)
    assert err.value.code in ("192", "193", "516")  # UNKNOWN_USER / WRONG_PASSWORD / AUTHENTICATION_FAILED
    assert "Wr0ng-pw-77" not in str(err.value) and "source 'ch'" in str(err.value)
