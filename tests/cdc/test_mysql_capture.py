"""The MySQL/MariaDB change capture (pipes_workers/cdc/mysql_capture.py) against a real MariaDB with the
row-based binlog: `make cdc-maria-start` (127.0.0.1:3341, scripts/cdc_mariadb.sh) or TEST_CDC_MARIADB_URL.
Skips with the reason when that server is unreachable or lacks the binlog settings; fails under CI=true.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pymysql
import pytest
from maria_binlog import NEEDED, binlog_database, connect

from dataloader_contract.errors import ConfigurationError, PermanentLoadError, UnsupportedTypeError
from dataloader_contract.request import LoadRequest, SourceConfig
from pipes_workers.cdc import capture_for
from pipes_workers.cdc.binlog_positions import parse_position, position_key
from pipes_workers.cdc.capture import Change
from pipes_workers.cdc.mysql_capture import MySqlCapture
from pipes_workers.secrets import ConnectionParams
from pipes_workers.sources.base import arrow_schema
from pipes_workers.sources.mysql import MySQLReader


@pytest.fixture(scope="module")
def cdc_maria() -> Iterator[tuple[str, str]]:
    """(server URL, a fresh database on it) on the binlog MariaDB."""
    with binlog_database() as found:
        yield found


@pytest.fixture
def db(cdc_maria: tuple[str, str]) -> Iterator[pymysql.connections.Connection]:
    """A connection to the test database (session time zone -03:00: TIMESTAMP input is converted)."""
    conn = connect(*cdc_maria)
    with conn.cursor() as cur:
        cur.execute("SET time_zone = '-03:00'")
    yield conn
    conn.close()


def params(cdc_maria: tuple[str, str]) -> ConnectionParams:
    parts = urlsplit(cdc_maria[0])
    return ConnectionParams(
        db_config_key="cdc_src",
        db_type="mariadb",
        host=parts.hostname,
        port=parts.port,
        database=cdc_maria[1],
        user=parts.username or "root",
        password=parts.password,
    )


def request(table: str, keys: tuple[str, ...] = ("id",)) -> LoadRequest:
    source = SourceConfig(db_config_key="cdc_src", db_type="mariadb", kv_scope="literal", config={})
    return LoadRequest(
        control_key=f"cdc_{table}",
        load_strategy="incremental",  # the capture does not look at it
        source_schema=None,
        source_table=table,
        destination_table=table,
        source=source,
        lake_root="/tmp/unused",
        primary_keys=keys,
    )


def run(conn: pymysql.connections.Connection, *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


def capture(cdc_maria: tuple[str, str], table: str, keys: tuple[str, ...] = ("id",)) -> MySqlCapture:
    found = capture_for(request(table, keys), params(cdc_maria))
    assert isinstance(found, MySqlCapture)
    return found


def head(cap: MySqlCapture) -> str:
    """The binlog head now (what a snapshot of an empty table would take)."""
    (row,) = cap._query("SHOW MASTER STATUS", what="head")
    return f"{row[0]}:{row[1]}"


@pytest.fixture
def new_table(
    cdc_maria: tuple[str, str], db: pymysql.connections.Connection
) -> Iterator[Callable[[str, str], tuple[MySqlCapture, str]]]:
    """`new_table(name, columns)`: CREATE TABLE name (columns) and its capture with the binlog head."""
    opened: list[MySqlCapture] = []

    def make(name: str, columns: str) -> tuple[MySqlCapture, str]:
        run(db, f"CREATE TABLE {name} ({columns})")
        opened.append(capture(cdc_maria, name))
        return opened[-1], head(opened[-1])

    yield make
    for cap in opened:
        cap.close()


def rows_of(changes: list[Change]) -> list[tuple[str, Any]]:
    return [(c.op, c.values.get("id")) for c in changes]


def assert_increasing(changes: list[Change], after: str) -> None:
    keys = [position_key(after)] + [position_key(c.position) for c in changes]
    assert keys == sorted(set(keys)), [c.position for c in changes]


def test_positions_parse_and_order() -> None:
    assert position_key("mysql-bin.000003:1234") == (3, 1234, 0)
    assert position_key("mysql-bin.000003:1234:2") == (3, 1234, 2)
    assert position_key("mysql-bin.000010:4") > position_key("mysql-bin.000009:99999:7")
    assert parse_position("a.b.000001:5:1").text() == "a.b.000001:5:1"
    for bad in ("mysql-bin:12", "0/16B3748", "mysql-bin.000001:x", ""):
        with pytest.raises(ValueError):
            position_key(bad)


def test_snapshot_is_consistent_with_its_position(
    cdc_maria: tuple[str, str], db: pymysql.connections.Connection
) -> None:
    """Rows written while the snapshot is taken are in the snapshot or after its position, never both."""
    run(db, "CREATE TABLE snap (id INT PRIMARY KEY, v VARCHAR(10))")
    run(db, "INSERT INTO snap VALUES " + ", ".join(f"({i}, 'a')" for i in range(1, 101)))
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        conn = connect(*cdc_maria)
        while not stop.is_set():
            k = len(written)
            run(conn, f"INSERT INTO snap VALUES ({1000 + k}, 'w')")
            if k < 100:
                run(conn, f"UPDATE snap SET v = 'u' WHERE id = {k + 1}")
            written.append(1000 + k)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 20:
            time.sleep(0.01)
        cap = capture(cdc_maria, "snap")
        snapshot = cap.start_snapshot()
        taken = len(written)
        while len(written) < taken + 20:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join()
    table = pa.Table.from_batches(list(snapshot.batches), cap.table_schema if len(cap.table_schema) else None)
    snap_ids = set(table.column("id").to_pylist())
    snap_updated = {r["id"] for r in table.to_pylist() if r["v"] == "u"}
    batch = cap.read_changes(snapshot.position, 100_000, 60)
    cap.close()
    inserted = [c.values["id"] for c in batch.changes if c.op == "insert"]
    updated = [c.values["id"] for c in batch.changes if c.op == "update"]
    assert len(inserted) == len(set(inserted))
    assert not snap_ids & set(inserted), "a row is both in the snapshot and a change after its position"
    assert snap_ids | set(inserted) == set(range(1, 101)) | set(written)
    assert not snap_updated & set(updated)
    assert snap_updated | set(updated) == {i - 999 for i in written if i < 1100}
    assert snap_ids - set(range(1, 101)), "the writer never ran before the snapshot"
    assert inserted, "the writer never ran after the snapshot"
    assert_increasing(batch.changes, snapshot.position)


def test_changes_in_order_with_increasing_positions(
    new_table: Callable[[str, str], tuple[MySqlCapture, str]], db: pymysql.connections.Connection
) -> None:
    run(db, "CREATE TABLE other (id INT PRIMARY KEY)")
    cap, start = new_table("ord", "id INT PRIMARY KEY, v VARCHAR(10)")
    run(db, "INSERT INTO ord VALUES (1, 'a'), (2, 'b'), (3, 'c')", "INSERT INTO other VALUES (1)")
    run(db, "BEGIN", "UPDATE ord SET v = 'bb' WHERE id = 2", "SAVEPOINT s", "INSERT INTO other VALUES (2)")
    run(db, "DELETE FROM ord WHERE id = 1", "COMMIT")
    run(db, "UPDATE ord SET id = 30 WHERE id = 3")  # a key change: delete 3, insert 30
    run(db, "TRUNCATE TABLE other", "TRUNCATE TABLE ord", "INSERT INTO ord VALUES (4, 'd')")
    batch = cap.read_changes(start, 1000, 60)
    assert rows_of(batch.changes) == [
        ("insert", 1), ("insert", 2), ("insert", 3), ("update", 2), ("delete", 1), ("delete", 3),
        ("insert", 30), ("truncate", None), ("insert", 4),
    ]  # fmt: skip
    assert batch.changes[3].values == {"id": 2, "v": "bb"}
    assert_increasing(batch.changes, start)
    assert position_key(batch.end_position) > position_key(batch.changes[-1].position)
    again = cap.read_changes(batch.end_position, 1000, 60)
    assert again.changes == [] and position_key(again.end_position) >= position_key(batch.end_position)


def test_bounds_and_resuming_after_a_position(
    new_table: Callable[[str, str], tuple[MySqlCapture, str]], db: pymysql.connections.Connection
) -> None:
    """A read stops at the end of the transaction that reaches max_changes, or cuts one larger than
    SPLIT_FACTOR x max_changes; reading on from each end position gives every change exactly once."""
    cap, start = new_table("bnd", "id INT PRIMARY KEY")
    run(db, "INSERT INTO bnd VALUES " + ", ".join(f"({i})" for i in range(1, 26)))  # one transaction
    run(db, "FLUSH BINARY LOGS")  # the rest in the next binlog file
    run(
        db,
        "INSERT INTO bnd VALUES (26)",
        "BEGIN",
        "INSERT INTO bnd VALUES (27)",
        "DELETE FROM bnd WHERE id < 3",
    )
    run(db, "COMMIT")
    everything = cap.read_changes(start, 1000, 60).changes
    assert rows_of(everything) == [("insert", i) for i in range(1, 28)] + [("delete", 1), ("delete", 2)]
    assert_increasing(everything, start)
    assert parse_position(everything[-1].position).sequence > parse_position(everything[0].position).sequence
    batches, after = [], start
    for _ in range(20):
        batch = cap.read_changes(after, 2, 60)
        assert all(position_key(c.position) > position_key(after) for c in batch.changes)
        assert position_key(batch.end_position) >= max(
            [position_key(after)] + [position_key(c.position) for c in batch.changes]
        )
        if not batch.changes:
            break
        batches.append([c.values["id"] for c in batch.changes])
        after = batch.end_position
    assert batches == [list(range(1, 21)), list(range(21, 26)), [26, 27, 1, 2]]
    read = [c for b in batches for c in b]
    assert read == [c.values["id"] for c in everything]
    middle = everything[4].position
    assert cap.read_changes(middle, 1000, 60).changes == everything[5:]
    nothing = cap.read_changes(start, 1000, 0)
    assert nothing.changes == [] and nothing.end_position == parse_position(start).text()


def test_purged_binlog_loses_the_position(
    new_table: Callable[[str, str], tuple[MySqlCapture, str]], db: pymysql.connections.Connection
) -> None:
    cap, old = new_table("prg", "id INT PRIMARY KEY")
    run(db, "INSERT INTO prg VALUES (1)")
    assert cap.has_position(old)
    run(db, "FLUSH BINARY LOGS")
    new = head(cap)
    for _ in range(100):  # a file the server still needs (binlog checkpoint, a dump thread) stays a moment
        run(db, f"PURGE BINARY LOGS TO '{new.split(':')[0]}'")
        if not cap.has_position(old):
            break
        time.sleep(0.1)
    assert not cap.has_position(old)
    assert cap.has_position(new)
    with pytest.raises(ConfigurationError, match="load_full") as caught:
        cap.read_changes(old, 10, 10)
    assert caught.value.code == "cdc_position_lost"


def test_lag_bytes_grows_with_writes(
    new_table: Callable[[str, str], tuple[MySqlCapture, str]], db: pymysql.connections.Connection
) -> None:
    cap, start = new_table("lag", "id INT PRIMARY KEY, pad TEXT")
    assert cap.lag_bytes() is None
    cap.acknowledge(start)
    before = cap.lag_bytes()
    assert before is not None and before >= 0
    run(db, "INSERT INTO lag VALUES " + ", ".join(f"({i}, REPEAT('x', 1000))" for i in range(50)))
    grown = cap.lag_bytes()
    assert grown is not None and grown >= before + 50_000
    batch = cap.read_changes(start, 1000, 60)
    assert batch.lag_bytes is not None and batch.lag_bytes < grown
    cap.acknowledge(batch.end_position)
    assert cap.lag_bytes() == batch.lag_bytes
    cap.drop()  # nothing on the server: forgets the position
    assert cap.lag_bytes() is None


TYPES_COLUMNS = """
    id BIGINT PRIMARY KEY, n DECIMAL(38,10), n2 DECIMAL(5,2), ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL,
    dt DATETIME(6), dt0 DATETIME, d DATE, t TIME(6), t0 TIME, b BOOLEAN, i1 TINYINT, u1 TINYINT UNSIGNED,
    i2 SMALLINT, u2 SMALLINT UNSIGNED, i3 MEDIUMINT, u3 MEDIUMINT UNSIGNED, i4 INT, u4 INT UNSIGNED,
    i8 BIGINT, u8 BIGINT UNSIGNED, f4 FLOAT, f8 DOUBLE, txt TEXT, vc VARCHAR(20), ch CHAR(4),
    lat CHAR(3) CHARACTER SET latin1, bl BLOB, vb VARBINARY(8), bn BINARY(3), j JSON,
    e ENUM('ok','sad'), s SET('y','x','z'), bit1 BIT(1), bit5 BIT(5), bit64 BIT(64), yr YEAR,
    uid UUID, ip INET4, g POINT NULL
"""
TYPES_ROWS = (
    "(1, 9999999999999999999999999999.9999999999, -999.99, '2024-03-30 21:59:59.999999', '1970-01-01 00:00:01', "
    "'2024-03-31 02:30:00.000001', '9999-12-31 23:59:59', '2024-02-29', '23:59:59.999999', '00:00:00', 1, -128, 255, "
    "-32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808, 18446744073709551615, "
    "0.3333333333, -2.5e300, 'héllo wörld 😀 中文', '', 'ab', 'é', x'00ff10', x'', x'41', '{\"k\": [1, 2]}', 'sad', "
    "'x,y', b'1', b'10101', b'1111111111111111111111111111111111111111111111111111111111111111', '0000', "
    "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.0.0.1', ST_GeomFromText('POINT(1 2)', 4326))",
    "(2, -0.0000000001, 0, '1970-01-01 00:00:01', NULL, '1000-01-01 00:00:00', NULL, '1000-01-01', '00:00:00', "
    "NULL, 0, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, -0.0, 0.1, 'x', 'y', '', "
    "NULL, '', 'abc', 'ab\\0', '[]', 'ok', '', b'0', b'0', b'0', 2155, '00000000-0000-0000-0000-000000000000', '0.0.0.0', "
    "ST_GeomFromText('POINT(0 0)'))",
    "(4, 1, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    "'6ccd780c-baba-1026-9564-5b8c656024db', NULL, NULL)",
    "(3" + ", NULL" * 39 + ")",
)


def reader_table(cdc_maria: tuple[str, str], table: str) -> pa.Table:
    """What a full load reads from the table (the MySQL reader)."""
    with MySQLReader(params(cdc_maria)) as reader:
        columns = reader.columns(None, table)
        return reader.read(None, table, columns=columns).read_all().sort_by("id")


def test_values_equal_the_readers_for_every_type(
    cdc_maria: tuple[str, str],
    db: pymysql.connections.Connection,
    new_table: Callable[[str, str], tuple[MySqlCapture, str]],
) -> None:
    cap, start = new_table("types", TYPES_COLUMNS)
    with MySQLReader(params(cdc_maria)) as reader:
        cap.table_schema = arrow_schema(reader.columns(None, "types"))
    run(db, "INSERT INTO types VALUES " + ", ".join(TYPES_ROWS))
    expected = reader_table(cdc_maria, "types")
    assert expected.num_rows == 4
    batch = cap.read_changes(start, 1000, 60)
    inserted = cap.to_arrow([c.values for c in batch.changes], cap.table_schema).sort_by("id")
    assert inserted.schema == expected.schema
    for name in expected.column_names:
        assert inserted.column(name).to_pylist() == expected.column(name).to_pylist(), name
    assert inserted.equals(expected)
    snapshot = cap.start_snapshot()
    snapped = pa.Table.from_batches(list(snapshot.batches), cap.table_schema).sort_by("id")
    assert snapped.equals(expected)
    after = snapshot.position
    run(
        db, "UPDATE types SET s = 'z,y', u8 = 1, ts = '2000-01-01 12:00:00', yr = 1901, bn = 'z' WHERE id = 1"
    )
    run(db, "DELETE FROM types WHERE id = 2")
    changes = cap.read_changes(after, 1000, 60).changes
    assert [c.op for c in changes] == ["update", "delete"]
    updated = cap.to_arrow([changes[0].values], cap.table_schema)
    assert updated.equals(reader_table(cdc_maria, "types").slice(0, 1))
    assert cap.to_arrow([changes[1].values], cap.table_schema).equals(expected.slice(1, 1))


def test_a_time_outside_a_day_fails_naming_the_column(
    new_table: Callable[[str, str], tuple[MySqlCapture, str]], db: pymysql.connections.Connection
) -> None:
    cap, start = new_table("tod", "id INT PRIMARY KEY, t TIME, flag TINYINT(1)")
    schema = pa.schema([("id", pa.int32()), ("t", pa.time64("us")), ("flag", pa.bool_())])
    run(db, "INSERT INTO tod VALUES (1, '-01:00:00', 0), (2, '01:00:00', 7)")
    changes = cap.read_changes(start, 10, 60).changes
    with pytest.raises(PermanentLoadError, match="column 't' holds a time outside"):
        cap.to_arrow([changes[0].values], schema)
    with pytest.raises(PermanentLoadError, match="column 'flag' is declared boolean"):
        cap.to_arrow([changes[1].values], schema)


def test_a_server_without_the_row_binlog_is_refused(mariadb_url: str) -> None:
    """The machine's MariaDB (3306) runs without log_bin=ON/ROW/FULL metadata: a clear configuration error."""
    parts = urlsplit(mariadb_url)
    settings = ConnectionParams(
        db_config_key="plain", db_type="mariadb", host=parts.hostname, port=parts.port,
        database=parts.path.lstrip("/"), user=parts.username or "root", password=parts.password,
    )  # fmt: skip
    conn = connect(mariadb_url, parts.path.lstrip("/"))
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL VARIABLES WHERE Variable_name IN (%s, %s, %s, %s)", tuple(NEEDED))
        if all(dict(cur.fetchall()).get(k) == v for k, v in NEEDED.items()):
            pytest.skip("the MariaDB at TEST_MARIADB_URL has the row binlog on")
        cur.execute("CREATE TABLE plain (id INT PRIMARY KEY)")
    conn.close()
    cap = MySqlCapture(request("plain"), settings)
    with pytest.raises(ConfigurationError, match=r"needs log_bin=ON, binlog_format=ROW.*the server has"):
        cap.start_snapshot()


def test_inet6_is_refused_naming_the_column(
    new_table: Callable[[str, str], tuple[MySqlCapture, str]], db: pymysql.connections.Connection
) -> None:
    cap, start = new_table("ip6", "id INT PRIMARY KEY, addr INET6")
    run(db, "INSERT INTO ip6 VALUES (1, '::ffff:1.2.3.4')")
    with pytest.raises(UnsupportedTypeError, match="column 'addr' is INET6"):
        cap.start_snapshot()
    with pytest.raises(UnsupportedTypeError, match="column 'addr' is INET6"):
        cap.read_changes(start, 10, 60)


def test_a_column_added_mid_stream(
    cdc_maria: tuple[str, str],
    db: pymysql.connections.Connection,
    new_table: Callable[[str, str], tuple[MySqlCapture, str]],
) -> None:
    """Each row carries the columns it had when written; the table read's schema fills the rest with NULL."""
    cap, start = new_table("grow", "id INT PRIMARY KEY, a TEXT")
    run(db, "INSERT INTO grow VALUES (1, 'x')", "ALTER TABLE grow ADD COLUMN b INT")
    run(db, "INSERT INTO grow VALUES (2, 'y', 5)")
    changes = cap.read_changes(start, 10, 60).changes
    assert [c.values for c in changes] == [{"id": 1, "a": "x"}, {"id": 2, "a": "y", "b": 5}]
    expected = reader_table(cdc_maria, "grow")
    assert cap.to_arrow([c.values for c in changes], expected.schema).equals(expected)
