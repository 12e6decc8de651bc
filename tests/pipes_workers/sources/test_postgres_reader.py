"""PostgreSQL reader against the real server: types row by row, filters, aggregates, quoting, errors."""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest

from dataloader_contract.errors import PermanentLoadError, TransientLoadError, UnsupportedTypeError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import Aggregate, Condition, RowFilter, SourceReader, arrow_schema, open_reader

TYPES_DDL = """
DROP TABLE IF EXISTS rt_types; DROP TYPE IF EXISTS rt_mood; DROP DOMAIN IF EXISTS rt_money;
CREATE TYPE rt_mood AS ENUM ('ok', 'sad');
CREATE DOMAIN rt_money AS numeric(10,2);
CREATE TABLE rt_types (
    id int8 PRIMARY KEY, n numeric(38,10), money rt_money, ts timestamptz, tsn timestamp, d date, t time,
    b bool, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, txt text, vc varchar(20), ch char(4),
    by bytea, u uuid, j json, jb jsonb, ai int4[], at text[], iv interval, mood rt_mood
);
"""
ROWS = [
    # Europe/Berlin DST starts 2024-03-31 01:00 UTC: one microsecond either side.
    "(1, 9999999999999999999999999999.9999999999, 12345678.90, '2024-03-31 01:59:59.999999 Europe/Berlin',"
    " '2024-03-31 02:30:00.000001', '2024-02-29', '23:59:59.999999', true, -32768, -2147483648,"
    " -9223372036854775808, 1.5, -2.5e300, 'héllo wörld 😀 中文', '', 'ab', '\\x00ff10'::bytea,"
    " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"k\": [1, 2]}', '{\"emoji\": \"😀\"}', '{1,NULL,3}',"
    " '{\"a b\",\"\",NULL,\"ü😀\"}', '1 year 2 mons 3 days 04:05:06.789', 'sad')",
    "(2, -0.0000000001, -0.01, '2024-03-31 03:00:00.000001 Europe/Berlin', '1970-01-01 00:00:00',"
    " '0001-01-01', '00:00:00', false, 32767, 2147483647, 9223372036854775807, -0.25, 0, '', 'x''y\\z', '',"
    " ''::bytea, '00000000-0000-0000-0000-000000000000', '[]', '{}', '{}', '{}', '-1 day', 'ok')",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,"
    " NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]
EXPECTED_TYPES = {
    "id": pa.int64(), "n": pa.decimal128(38, 10), "money": pa.decimal128(10, 2),
    "ts": pa.timestamp("us", tz="UTC"), "tsn": pa.timestamp("us"), "d": pa.date32(), "t": pa.time64("us"),
    "b": pa.bool_(), "i2": pa.int16(), "i4": pa.int32(), "i8": pa.int64(), "f4": pa.float32(),
    "f8": pa.float64(), "txt": pa.string(), "vc": pa.string(), "ch": pa.string(), "by": pa.binary(),
    "u": pa.string(), "j": pa.string(), "jb": pa.string(), "ai": pa.list_(pa.int32()),
    "at": pa.list_(pa.string()), "iv": pa.string(), "mood": pa.string(),
}  # fmt: skip


@pytest.fixture
def types_table(pg_conn: psycopg.Connection) -> Iterator[str]:
    pg_conn.execute(TYPES_DDL)
    pg_conn.execute("INSERT INTO rt_types VALUES " + ", ".join(ROWS))
    yield "rt_types"
    pg_conn.execute("DROP TABLE rt_types; DROP TYPE rt_mood; DROP DOMAIN rt_money")


def _read_all(
    reader: SourceReader, table: str, row_filter: RowFilter | None = None, **kw: object
) -> pa.Table:
    columns = reader.columns(None, table)
    stream = reader.read(None, table, columns=columns, row_filter=row_filter, **kw)
    batches = list(stream)
    for batch in batches:
        assert batch.schema == arrow_schema(columns)
    return pa.Table.from_batches(batches, schema=arrow_schema(columns))


def test_catalog_types(pg_reader: SourceReader, types_table: str) -> None:
    columns = pg_reader.columns(None, types_table)
    assert {c.name: c.arrow_type for c in columns} == EXPECTED_TYPES
    assert [c.name for c in columns] == list(EXPECTED_TYPES)
    assert columns[0].nullable is False and columns[1].nullable is True
    assert columns[1].source_type == "numeric(38,10)"


def test_types_round_trip_row_by_row(
    pg_reader: SourceReader, pg_conn: psycopg.Connection, types_table: str
) -> None:
    got = _read_all(pg_reader, types_table).sort_by("id").to_pylist()
    pg_conn.execute("SET IntervalStyle = 'iso_8601'")
    cur = pg_conn.execute(
        "SELECT id, n, money, ts, tsn, d, t, b, i2, i4, i8, f4, f8, txt, vc, ch, by, u::text, j::text, jb::text,"
        " ai, at, iv::text, mood::text FROM rt_types ORDER BY id"
    )
    names = list(EXPECTED_TYPES)
    expected = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for got_row, want in zip(got, expected, strict=True):
        want["by"] = bytes(want["by"]) if want["by"] is not None else None
        assert got_row == want, f"row {want['id']}"
    first = got[0]
    assert first["ts"] == datetime(2024, 3, 31, 0, 59, 59, 999999, tzinfo=UTC)
    assert got[1]["ts"] == datetime(2024, 3, 31, 1, 0, 0, 1, tzinfo=UTC)
    assert first["n"] == Decimal("9999999999999999999999999999.9999999999")
    assert first["ai"] == [1, None, 3] and first["at"] == ["a b", "", None, "ü😀"]
    assert json.loads(first["jb"]) == {"emoji": "😀"} and first["iv"] == "P1Y2M3DT4H5M6.789S"
    assert got[1]["vc"] == "x'y\\z" and got[1]["by"] == b"" and got[1]["ai"] == []
    assert all(v is None for k, v in got[2].items() if k != "id")


def test_filters_at_microsecond_precision(pg_reader: SourceReader, pg_conn: psycopg.Connection) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_filter")
    pg_conn.execute(
        "CREATE TABLE rt_filter (id int, ts timestamptz, tsn timestamp, name text, amount numeric(12,2))"
    )
    pg_conn.execute(
        "INSERT INTO rt_filter VALUES (1, '2024-01-01 00:00:00.000001+00', '2024-01-01 00:00:00.000001', 'a', 1.10),"
        " (2, '2024-01-01 00:00:00.000002+00', '2024-01-01 00:00:00.000002', 'O''Brien\\x', 2.20),"
        " (3, '2024-01-01 00:00:00.000003+00', '2024-01-01 00:00:00.000003', 'c', 3.30),"
        " (4, NULL, NULL, NULL, NULL)"
    )
    t1 = datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    t3 = datetime(2024, 1, 1, 0, 0, 0, 3, tzinfo=UTC)

    def ids(*conds: Condition, or_null: str | None = None) -> list[int]:
        table = _read_all(pg_reader, "rt_filter", RowFilter(conds, or_null_column=or_null))
        return sorted(table.column("id").to_pylist())

    assert ids(Condition("ts", ">", t1)) == [2, 3]
    assert ids(Condition("ts", ">=", t1)) == [1, 2, 3]
    assert ids(Condition("ts", ">=", t1), Condition("ts", "<=", t3)) == [1, 2, 3]
    assert ids(Condition("ts", ">", t1), Condition("ts", "<", t3)) == [2]
    assert ids(Condition("ts", ">", t1), or_null="ts") == [2, 3, 4]
    # The same instant written in another zone selects the same rows.
    assert ids(Condition("ts", ">", t1.astimezone(__import__("zoneinfo").ZoneInfo("America/New_York")))) == [
        2,
        3,
    ]
    assert ids(Condition("tsn", ">", t1.replace(tzinfo=None))) == [2, 3]
    assert ids(Condition("name", "=", "O'Brien\\x")) == [2]
    assert ids(Condition("amount", ">=", Decimal("2.20"))) == [2, 3]
    assert ids(Condition("id", "<=", 2), Condition("amount", ">", 1.5)) == [2]
    aggregates = [
        Aggregate("min", "ts"),
        Aggregate("max", "ts"),
        Aggregate("count"),
        Aggregate("max", "amount"),
    ]
    assert pg_reader.aggregate(None, "rt_filter", aggregates) == (t1, t3, 4, Decimal("3.30"))
    assert pg_reader.aggregate(None, "rt_filter", aggregates, RowFilter((Condition("ts", ">", t3),))) == (
        None,
        None,
        0,
        None,
    )
    assert pg_reader.aggregate(
        None, "rt_filter", [Aggregate("count")], RowFilter((Condition("ts", ">", t1),), "ts")
    ) == (3,)
    pg_conn.execute("DROP TABLE rt_filter")


def test_awkward_identifiers_are_quoted(pg_reader: SourceReader, pg_conn: psycopg.Connection) -> None:
    pg_conn.execute('CREATE SCHEMA IF NOT EXISTS "odd ""schema"""')
    pg_conn.execute('CREATE TABLE "odd ""schema"""."we""ird; table" (id int, "Mixed Case ""col""" text)')
    pg_conn.execute('INSERT INTO "odd ""schema"""."we""ird; table" VALUES (1, \'x\'), (2, \'y\')')
    schema, table, column = 'odd "schema"', 'we"ird; table', 'Mixed Case "col"'
    columns = pg_reader.columns(schema, table)
    assert [c.name for c in columns] == ["id", column]
    rows = pg_reader.read(
        schema, table, columns=columns, row_filter=RowFilter((Condition(column, ">", "x"),))
    )
    assert rows.read_all().to_pylist() == [{"id": 2, column: "y"}]
    assert pg_reader.aggregate(schema, table, [Aggregate("max", column), Aggregate("count")]) == ("y", 2)
    pg_conn.execute('DROP SCHEMA "odd ""schema""" CASCADE')


def test_missing_table_is_permanent(pg_reader: SourceReader) -> None:
    with pytest.raises(PermanentLoadError, match=r'^source table "public"."no_such_table" does not exist$'):
        pg_reader.columns(None, "no_such_table")
    with pytest.raises(PermanentLoadError, match=r'source table "public"."no_such_table" does not exist'):
        pg_reader.aggregate(None, "no_such_table", [Aggregate("count")])


def test_unconstrained_numeric_policy(pg_reader: SourceReader, pg_conn: psycopg.Connection) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_num")
    pg_conn.execute("CREATE TABLE rt_num (id int, v numeric)")
    pg_conn.execute(
        "INSERT INTO rt_num VALUES (1, 1.5), (2, -12345678901234567890.123456789012345678), (3, NULL)"
    )
    (column,) = [c for c in pg_reader.columns(None, "rt_num") if c.name == "v"]
    assert column.arrow_type == pa.decimal128(38, 18)
    values = _read_all(pg_reader, "rt_num").sort_by("id").column("v").to_pylist()
    assert values == [Decimal("1.5"), Decimal("-12345678901234567890.123456789012345678"), None]
    pg_conn.execute("INSERT INTO rt_num VALUES (4, 1.0 / 3)")  # 20 decimals: does not fit scale 18
    with pytest.raises(PermanentLoadError, match="column 'v'.*does not fit decimal128"):
        _read_all(pg_reader, "rt_num")
    pg_conn.execute("UPDATE rt_num SET v = 'NaN' WHERE id = 4")
    with pytest.raises(PermanentLoadError, match="column 'v' holds NaN or Infinity"):
        _read_all(pg_reader, "rt_num")
    pg_conn.execute("DROP TABLE rt_num")


def test_unsupported_types_are_explicit(pg_reader: SourceReader, pg_conn: psycopg.Connection) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_unsup")
    pg_conn.execute("CREATE TABLE rt_unsup (id int, big numeric(40,2), rel regclass)")
    with pytest.raises(UnsupportedTypeError, match=r"\"rt_unsup\": column 'big' has type 'numeric\(40,2\)'"):
        pg_reader.columns(None, "rt_unsup")
    pg_conn.execute("ALTER TABLE rt_unsup DROP COLUMN big")
    with pytest.raises(UnsupportedTypeError, match="column 'rel' has type 'regclass'"):
        pg_reader.columns(None, "rt_unsup")
    pg_conn.execute("DROP TABLE rt_unsup")


def test_multidimensional_array_fails_naming_the_column(
    pg_reader: SourceReader, pg_conn: psycopg.Connection
) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_arr")
    pg_conn.execute("CREATE TABLE rt_arr (id int, grid int4[])")
    pg_conn.execute("INSERT INTO rt_arr VALUES (1, '{1,2}'), (2, '{{1,2},{3,4}}')")
    with pytest.raises(PermanentLoadError, match="column 'grid' holds a multi-dimensional array"):
        _read_all(pg_reader, "rt_arr")
    pg_conn.execute("DROP TABLE rt_arr")


def test_stream_is_incremental_and_complete(pg_reader: SourceReader, pg_conn: psycopg.Connection) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_big")
    pg_conn.execute(
        "CREATE TABLE rt_big AS SELECT g::int8 AS id, now() AS updated_at, (g % 1000)::numeric(12,2) AS amount,"
        " repeat('x', 200) AS payload FROM generate_series(1, 300000) g"
    )
    columns = pg_reader.columns(None, "rt_big")
    stream = pg_reader.read(None, "rt_big", columns=columns, batch_rows=10_000)
    first = stream.read_next_batch()
    # The server is still sending: the client has not pulled the whole table into memory.
    active = pg_conn.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'COPY%rt_big%'"
    ).fetchone()[0]
    assert active == 1
    rows, batches, largest = first.num_rows, 1, first.num_rows
    for batch in stream:
        assert batch.schema == arrow_schema(columns)
        rows, batches, largest = rows + batch.num_rows, batches + 1, max(largest, batch.num_rows)
    assert rows == 300_000 and batches >= 10 and largest < 100_000
    pg_conn.execute("DROP TABLE rt_big")


def _established_tcp_ports() -> set[int]:
    """Local ports of this host's ESTABLISHED TCP sockets (/proc/net/tcp{,6})."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(name) as table:
            for line in list(table)[1:]:
                fields = line.split()
                if fields[3] == "01":  # TCP_ESTABLISHED
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _backend_gone(conn: psycopg.Connection, pid: int, *, within_s: float) -> bool:
    """Whether backend `pid` has left pg_stat_activity, polling for at most `within_s`."""
    deadline = time.monotonic() + within_s
    while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_closing_a_half_read_stream_releases_the_connection(
    pg_reader: SourceReader, pg_conn: psycopg.Connection
) -> None:
    """Closing releases the COPY's connection at once (its socket is closed when close() returns); the
    server's backend then notices the closed socket and exits on the server's own time — on a busy
    machine not before the next query (issue 19: it once still showed in pg_stat_activity), so that
    part is polled, with a bound a connection left open would not pass."""
    pg_conn.execute("DROP TABLE IF EXISTS rt_half")
    pg_conn.execute(
        "CREATE TABLE rt_half AS SELECT g AS id, repeat('y', 300) AS p FROM generate_series(1, 200000) g"
    )
    columns = pg_reader.columns(None, "rt_half")
    stream = pg_reader.read(None, "rt_half", columns=columns, batch_rows=5_000)
    stream.read_next_batch()
    pid, client_port = pg_conn.execute(
        "SELECT pid, client_port FROM pg_stat_activity WHERE query LIKE 'COPY%rt_half%' "
        "AND datname = current_database()"
    ).fetchone()
    if client_port > 0:  # a TCP connection (-1: a Unix socket)
        assert client_port in _established_tcp_ports()

    stream.close()
    pg_reader.close()

    if client_port > 0:
        assert client_port not in _established_tcp_ports()  # our side: closed, not left to the GC
    assert _backend_gone(pg_conn, pid, within_s=60)
    pg_conn.execute("DROP TABLE rt_half")


PLANTED = "Pl4nted-pw-9c1e"


def _failure_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_connection_refused_is_transient_and_hides_the_password(pg_config: SourceConfig) -> None:
    config = pg_config
    bad = SourceConfig("src", "postgresql", "literal", {**config.config, "port": 1, "password": PLANTED})
    with pytest.raises(TransientLoadError) as info:
        open_reader(bad)
    assert "source 'src'" in str(info.value)
    assert PLANTED not in _failure_text(info.value)


def test_unknown_database_is_permanent_and_hides_the_password(pg_config: SourceConfig) -> None:
    config = pg_config
    bad = SourceConfig(
        "src", "postgresql", "literal", {**config.config, "database": "nope", "password": PLANTED}
    )
    with pytest.raises(PermanentLoadError) as info:
        open_reader(bad)
    assert "does not exist" in str(info.value)
    assert PLANTED not in _failure_text(info.value)


def test_reader_repr_and_password_in_env(pg_config: SourceConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    config = pg_config
    monkeypatch.setenv("SRC_PW", PLANTED)
    for key, value in config.config.items():
        monkeypatch.setenv(f"SRC_{key.upper()}", str(value))
    names = {key: f"SRC_{key.upper()}" for key in config.config} | {"password": "SRC_PW"}
    with open_reader(SourceConfig("src", "postgresql", "env", names)) as reader:
        assert PLANTED not in repr(reader.__dict__)
        assert reader.aggregate("pg_catalog", "pg_type", [Aggregate("count")])[0] > 0


@pytest.mark.parametrize(
    ("column_type", "value", "message"),
    [
        ("timestamptz", "infinity", "holds infinity"),
        ("timestamp", "-infinity", "holds infinity"),
        ("date", "infinity", "holds infinity"),
        ("time", "24:00:00", "holds 24:00:00"),
    ],
)
def test_values_the_driver_cannot_decode_fail_naming_the_column(
    pg_reader: SourceReader, pg_conn: psycopg.Connection, column_type: str, value: str, message: str
) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_inf")
    pg_conn.execute(f"CREATE TABLE rt_inf (id int, v {column_type})")
    pg_conn.execute("INSERT INTO rt_inf VALUES (1, NULL), (2, %s)", (value,))
    with pytest.raises(PermanentLoadError, match=f"column 'v' {message}"):
        _read_all(pg_reader, "rt_inf")
    pg_conn.execute("DELETE FROM rt_inf WHERE id = 2")
    assert _read_all(pg_reader, "rt_inf").column("v").to_pylist() == [None]
    pg_conn.execute("DROP TABLE rt_inf")


def test_count_before_read_counts_in_the_snapshot_it_was_started_in(
    pg_reader: SourceReader, pg_conn: psycopg.Connection
) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_counted; CREATE TABLE rt_counted (id int8 PRIMARY KEY)")
    pg_conn.execute("INSERT INTO rt_counted SELECT generate_series(1, 1000)")
    try:
        pending = pg_reader.count_before_read(None, "rt_counted")
        # Committed after the count started, before its result is asked for: read, not counted.
        pg_conn.execute("INSERT INTO rt_counted SELECT generate_series(1001, 1010)")
        assert _read_all(pg_reader, "rt_counted").num_rows == 1010
        assert pending.result() == 1000
        with pytest.raises(PermanentLoadError, match=r'"public"."no_such_table" does not exist'):
            pg_reader.count_before_read(None, "no_such_table").result()
        pg_reader.count_before_read(None, "rt_counted")  # never waited for: closed with the reader
    finally:
        pg_conn.execute("DROP TABLE rt_counted")
