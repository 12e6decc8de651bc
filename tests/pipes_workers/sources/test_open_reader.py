"""open_reader's registry, literal rendering, and error classification."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from dataloader_contract.errors import ConfigurationError
from dataloader_contract.request import SourceConfig
from pipes_workers.sources import READERS, Aggregate, Condition, RowFilter, open_reader
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
    assert (
        len(
            {
                READERS[t]
                for t in ("postgresql", "mysql", "sqlite", "mssql", "oracle", "snowflake", "clickhouse")
            }
        )
        == 7
    )


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
    from dataloader_contract.errors import TransientLoadError
    from pipes_workers.sources.failures import classify

    error = classify(exc, what="reading x", secrets=("hunter22",))
    assert isinstance(error, TransientLoadError) is transient


def test_scrub_removes_urls_and_secrets() -> None:
    from pipes_workers.sources.failures import scrub

    text = "failed for postgresql://u:hunter22@h/db password=hunter22 and hunter22\nsecond line hunter22"
    assert scrub(text, ("hunter22",)) == "failed for <url> password=*** and ***"
