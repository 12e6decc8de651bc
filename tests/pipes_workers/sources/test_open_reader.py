"""open_reader's registry, literal rendering, and the generic SQLAlchemy reader's SQLAlchemy layer."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest

from pipes_workers.errors import ConfigurationError, PermanentLoadError
from pipes_workers.request import SourceConfig
from pipes_workers.secrets import resolve_source
from pipes_workers.sources import READERS, Aggregate, Condition, RowFilter, open_reader
from pipes_workers.sources.generic import GenericSQLAlchemyReader
from pipes_workers.sources.literals import mysql_literal, postgres_literal
from pipes_workers.sources.mysql import quote_mysql_identifier
from pipes_workers.sources.postgres import quote_pg_identifier


def test_unknown_db_type_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown db_type 'db2'; known: clickhouse, mariadb, mssql"):
        open_reader(SourceConfig("k", "db2", "literal", {}))


def test_registry_covers_every_db_type() -> None:
    assert set(READERS) == {
        "postgresql",
        "mysql",
        "mariadb",
        "sqlite",
        "mssql",
        "oracle",
        "snowflake",
        "clickhouse",
    }
    assert READERS["mysql"] is READERS["mariadb"]
    assert READERS["mssql"] is READERS["oracle"] is READERS["snowflake"] is READERS["clickhouse"]


def test_generic_dialect_without_driver_fails_permanently_without_the_password() -> None:
    config = SourceConfig(
        "ms", "mssql", "literal", {"host": "127.0.0.1", "user": "sa", "password": "Pl4nted-ms"}
    )
    with pytest.raises(PermanentLoadError) as info:
        open_reader(config)
    assert "Pl4nted-ms" not in str(info.value) and "source 'ms'" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, "TRUE"),
        (42, "42"),
        (2**70, f"{2**70}::numeric"),
        (1.5, "1.5::float8"),
        (Decimal("12.340"), "12.340::numeric"),
        (datetime(2024, 3, 31, 3, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))), "'2024-03-31 01:00:00.000001+00:00'::timestamptz"),
        (datetime(2024, 1, 1), "'2024-01-01 00:00:00.000000'::timestamp"),
        (date(2024, 2, 29), "'2024-02-29'::date"),
        (time(1, 2, 3, 4), "'01:02:03.000004'::time"),
        (uuid.UUID(int=1), "'00000000-0000-0000-0000-000000000001'::uuid"),
        ("it's a \\ test", "E'it''s a \\\\ test'"),
    ],
)  # fmt: skip
def test_postgres_literals(value: object, expected: str) -> None:
    assert postgres_literal(value) == expected


def test_mysql_literals_escape_quotes_and_backslashes() -> None:
    assert mysql_literal("a'b\\c\n\x1a\"") == "'a\\'b\\\\c\\n\\Z\\\"'"
    assert mysql_literal(datetime(2024, 1, 1, 2, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))) == (
        "CAST('2024-01-01 00:00:00.000005' AS DATETIME(6))"
    )
    assert mysql_literal(Decimal("1.10")) == "1.10"


def test_bad_values_are_refused() -> None:
    for value in (float("nan"), Decimal("Infinity"), "nul\x00", object(), b"bytes"):
        with pytest.raises(ConfigurationError):
            postgres_literal(value)
    with pytest.raises(ConfigurationError):
        quote_pg_identifier("a\x00b")


def test_identifier_quoting() -> None:
    assert quote_pg_identifier('we"ird; table') == '"we""ird; table"'
    assert quote_mysql_identifier("we`ird") == "`we``ird`"


def test_injection_attempt_in_a_filter_value_is_data(
    pg_config: SourceConfig, pg_conn: psycopg.Connection
) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_inj")
    pg_conn.execute("CREATE TABLE rt_inj (id int, name text)")
    pg_conn.execute("INSERT INTO rt_inj VALUES (1, 'a')")
    attack = "x' OR 1=1; DROP TABLE rt_inj; --\\"
    with open_reader(pg_config) as reader:
        columns = reader.columns(None, "rt_inj")
        rows = reader.read(
            None, "rt_inj", columns=columns, row_filter=RowFilter((Condition("name", "=", attack),))
        )
        assert rows.read_all().num_rows == 0
        assert reader.aggregate(None, "rt_inj", [Aggregate("count")]) == (1,)
    pg_conn.execute("DROP TABLE rt_inj")


def test_generic_reader_sqlalchemy_layer_against_postgres(
    pg_config: SourceConfig, pg_conn: psycopg.Connection
) -> None:
    pg_conn.execute("DROP TABLE IF EXISTS rt_generic")
    pg_conn.execute(
        'CREATE TABLE rt_generic (id int8, "Odd ""name""" text, amount numeric(12,2), ts timestamptz, d date, ok bool)'
    )
    stamp = datetime(2024, 3, 31, 1, 0, 0, 1, tzinfo=UTC)
    pg_conn.execute(
        "INSERT INTO rt_generic VALUES (1, 'a', 1.25, %s, '2024-01-01', true), (2, NULL, NULL, NULL, NULL, NULL)",
        (stamp,),
    )
    params = resolve_source(pg_config)
    reader = GenericSQLAlchemyReader(params, drivername="postgresql+psycopg")
    try:
        columns = reader.columns("public", "rt_generic")
        assert [c.arrow_type for c in columns] == [
            pa.int64(), pa.string(), pa.decimal128(12, 2), pa.timestamp("us", tz="UTC"), pa.date32(), pa.bool_(),
        ]  # fmt: skip
        row_filter = RowFilter((Condition("ts", ">=", stamp),), or_null_column="ts")
        rows = reader.read(
            "public", "rt_generic", columns=columns, row_filter=row_filter, batch_rows=1
        ).read_all()
        assert rows.to_pylist() == [
            {
                "id": 1,
                'Odd "name"': "a",
                "amount": Decimal("1.25"),
                "ts": stamp,
                "d": date(2024, 1, 1),
                "ok": True,
            },
            {"id": 2, 'Odd "name"': None, "amount": None, "ts": None, "d": None, "ok": None},
        ]
        assert reader.aggregate("public", "rt_generic", [Aggregate("max", "ts"), Aggregate("count")]) == (
            stamp,
            2,
        )
        with pytest.raises(PermanentLoadError, match="does not exist"):
            reader.columns("public", "nope")
    finally:
        reader.close()
        pg_conn.execute("DROP TABLE rt_generic")


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (psycopg.OperationalError("connection failed: FATAL:  sorry, too many clients already"), True),
        (psycopg.OperationalError("connection failed: FATAL:  the database system is starting up"), True),
        (psycopg.OperationalError('FATAL:  password authentication failed for user "x"'), False),
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (ConnectionResetError("Connection reset by peer"), True),
        (TimeoutError("timed out"), True),
    ],
)
def test_failure_classification(exc: Exception, transient: bool) -> None:
    from pipes_workers.errors import TransientLoadError
    from pipes_workers.sources.failures import classify

    error = classify(exc, what="reading x", secrets=("hunter22",))
    assert isinstance(error, TransientLoadError) is transient


def test_scrub_removes_urls_and_secrets() -> None:
    from pipes_workers.sources.failures import scrub

    text = "failed for postgresql://u:hunter22@h/db password=hunter22 and hunter22\nsecond line hunter22"
    assert scrub(text, ("hunter22",)) == "failed for <url> password=*** and ***"
