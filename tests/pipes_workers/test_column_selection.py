"""include_columns / exclude_columns on real PostgreSQL and MariaDB: a left-out column is never read
(the reader's statement does not name it, and a login the source forbids to read it loads fine),
never lands in Delta, and is no schema drift; a listed column the source lacks is a configuration
error naming it and the table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from columns_support import SECRET, customer, customers_table, insert_customers, login_without
from loadtest_support import SourceDB, after_success, destination_rows, insert_control_row
from psycopg.types.json import Jsonb

from dataloader_contract.request import LoadRequest, SourceConfig
from dataloader_contract.result import FRESHNESS, SCHEMA_DRIFT, LoadResult
from pipes_workers.column_selection import selected_columns
from pipes_workers.hash_key import HASH_KEY_ENV
from pipes_workers.load import attempt_load, run_load
from pipes_workers.metadata import materialization_metadata
from pipes_workers.sources import open_reader
from pipes_workers.sources.base import SourceColumn
from pipes_workers.sources.spatial import SRID_SOURCE_TYPE, SRID_TYPE, srid_column
from pipes_workers.validate import validate_control_rows

SELECTIONS = {
    "exclude": ({"exclude_columns": (SECRET,)}, ("id", "email", "updated_at", "day"), (SECRET,)),
    "include": (
        {"include_columns": ("updated_at", "id", "email")},
        ("id", "email", "updated_at"),
        (SECRET, "day"),
    ),
}


@pytest.mark.parametrize("selection", sorted(SELECTIONS))
@pytest.mark.parametrize("strategy", ["full", "incremental"])
def test_a_left_out_column_never_leaves_the_source(
    source: SourceDB, lake_root: Path, selection: str, strategy: str
) -> None:
    lists, landed, left_out = SELECTIONS[selection]
    table = customers_table(source)
    insert_customers(source, table, [customer(i) for i in range(1, 6)])
    with login_without(source, table, SECRET) as restricted:
        # The login really may not read the column: loading every column fails on the server.
        everything = source.request(
            table, strategy, lake_root, source=restricted, destination_table="bronze/all"
        )
        refused = attempt_load(everything)
        assert refused.error is not None and "denied" in refused.error.message.lower(), refused.error

        request = source.request(table, strategy, lake_root, source=restricted, **lists)
        with open_reader(restricted) as reader:
            columns = selected_columns(request, reader.columns(None, table), source.quote(table))
            statement = reader.select_sql(None, table, columns, None)
        assert SECRET not in statement and "email" in statement, statement

        first = run_load(request)
        assert first.rows_read == 5 and first.error is None
        assert first.columns_left_out == left_out
        assert [c.name for c in first.source_columns] == list(landed)
        rows = destination_rows(request)
        assert [tuple(r) for r in rows] == [landed] * 5
        assert [r["email"] for r in rows] == [f"user{i}@example.com" for i in range(1, 6)]
        drift = next(c for c in first.checks if c.name == SCHEMA_DRIFT)
        assert drift.passed, drift.metadata
        assert _failed_checks(first) == ()
        assert materialization_metadata(first, source_table=table)["columns_not_loaded"] == {
            "raw_value": ", ".join(left_out),
            "type": "text",
        }

        # A second load (a merge for incremental) still never reads the column.
        source.execute(
            f"UPDATE {source.quote(table)} SET email = 'changed@example.com', updated_at = %s WHERE id = 2",
            (source.ts(customer(9)[3]),),
        )
        insert_customers(source, table, [customer(6)])
        second = run_load(after_success(request, first))
        assert second.error is None and _failed_checks(second) == ()
        rows = destination_rows(request)
        assert len(rows) == 6 and all(tuple(r) == landed for r in rows)
        assert rows[1]["email"] == "changed@example.com"


@pytest.mark.parametrize(
    ("setting", "names"),
    [
        ("include_columns", ("id", "updated_at", "e-mail")),
        ("exclude_columns", ("e-mail",)),
        ("hash_columns", ("e-mail",)),
    ],
)
def test_a_listed_column_the_source_lacks_is_a_configuration_error(
    source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch, setting: str, names: tuple[str, ...]
) -> None:
    monkeypatch.setenv(HASH_KEY_ENV, "a key long enough for the tests")
    table = customers_table(source)
    insert_customers(source, table, [customer(1)])
    request = source.request(table, "incremental", lake_root, **{setting: names})
    result = attempt_load(request)
    assert result.error is not None
    assert result.error.kind == "configuration"
    assert result.error.message == (
        f"test.{table}: {setting} names 'e-mail', which is not a column of {source.quote(table)}"
    )
    assert destination_rows(request) == []


def test_excluding_a_column_of_a_loaded_table_keeps_its_old_values_visible_as_drift(
    pg_source: SourceDB, lake_root: Path
) -> None:
    """Excluding a column later reads it no more; the Delta column stays (older rows keep their
    values, new ones get NULL) and the schema-drift check says the Delta table has a column the
    load does not read — reload with load_full to drop it."""
    table = customers_table(pg_source)
    insert_customers(pg_source, table, [customer(1)])
    request = pg_source.request(table, "incremental", lake_root)
    first = run_load(request)
    insert_customers(pg_source, table, [customer(2)])
    later = dataclasses.replace(after_success(request, first), exclude_columns=(SECRET,))
    second = run_load(later)
    rows = destination_rows(request)
    assert [r[SECRET] for r in rows] == ["hunter1", None]
    drift = next(c for c in second.checks if c.name == SCHEMA_DRIFT)
    assert not drift.passed and drift.metadata["delta_only_columns"] == SECRET

    reloaded = run_load(dataclasses.replace(after_success(later, second), load_full=True))
    assert _failed_checks(reloaded) == ()
    assert SECRET not in destination_rows(request)[0]


def _failed_checks(result: LoadResult) -> tuple[str, ...]:
    """The failed checks but freshness (the test rows are stamped in 2024)."""
    return tuple(name for name in result.failed_checks if name != FRESHNESS)


def test_validate_names_a_listed_column_the_source_lacks(
    source: SourceDB, control_conn: psycopg.Connection, control_db_url: str
) -> None:
    table = customers_table(source)
    control_conn.execute(
        "INSERT INTO dataloader.table_control_dbconfig (db_config_key, db_type, db_config_value, db_kv_scope) "
        "VALUES ('src', %s, %s, 'literal')",
        (source.db_type, Jsonb(source.config().config)),
    )
    insert_control_row(control_conn, "v.ok", "src", table, exclude_columns=[SECRET], hash_columns=["email"])
    insert_control_row(
        control_conn, "v.typo", "src", table, exclude_columns=["nope"], hash_columns=["e-mail"]
    )
    checks = {check.control_key: check.problems for check in validate_control_rows(control_db_url)}
    assert checks == {
        "v.ok": (),
        "v.typo": (
            f"source table {source.quote(table)}: exclude_columns 'nope' is not a column",
            f"source table {source.quote(table)}: hash_columns 'e-mail' is not a column",
        ),
    }


@pytest.mark.parametrize(
    ("lists", "message"),
    [
        ({"exclude_columns": ("id",)}, "exclude_columns leaves out 'id': it is a primary key (primary_keys)"),
        (
            {"include_columns": ("id", "email")},
            "include_columns leaves out 'updated_at': it is the incremental_column",
        ),
        (
            {"hash_columns": ("updated_at",)},
            "hash_columns cannot hash 'updated_at': it is the incremental_column",
        ),
    ],
)
def test_a_request_built_outside_the_control_table_keeps_its_rules(
    pg_source: SourceDB, lake_root: Path, monkeypatch: pytest.MonkeyPatch, lists: dict, message: str
) -> None:
    monkeypatch.setenv(HASH_KEY_ENV, "a key long enough for the tests")
    table = customers_table(pg_source)
    insert_customers(pg_source, table, [customer(1)])
    result = attempt_load(pg_source.request(table, "incremental", lake_root, **lists))
    assert result.error is not None and result.error.kind == "configuration"
    assert result.error.message.startswith(f"test.{table}: {message}"), result.error.message


def test_a_spatial_columns_srid_companion_follows_its_geometry() -> None:
    """The companion `<geometry>__srid` is read as ST_SRID(<geometry>): it must go where its geometry goes."""
    columns = [
        SourceColumn("id", "bigint", pa.int64()),
        SourceColumn("place", "geometry", pa.binary()),
        SourceColumn(srid_column("place"), SRID_SOURCE_TYPE, SRID_TYPE),
        SourceColumn("name", "text", pa.string()),
    ]
    base = {"control_key": "t", "load_strategy": "full", "source_schema": None, "source_table": "t"}
    common = {
        **base,
        "destination_table": "b/t",
        "source": SourceConfig("s", "postgresql", "literal"),
        "lake_root": "/l",
    }
    excluded = LoadRequest(**common, exclude_columns=("place",))
    included = LoadRequest(**common, include_columns=("id", "place"))
    assert [c.name for c in selected_columns(excluded, columns, "t")] == ["id", "name"]
    assert [c.name for c in selected_columns(included, columns, "t")] == ["id", "place", "place__srid"]
