"""Awkward identifiers end to end, and schema drift through the strategies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loadtest_support import SourceDB, after_success, destination_rows, make_rows

from dataloader_contract.errors import SchemaConflictError
from dataloader_contract.request import LoadRequest, table_uri
from pipes_workers.lake.session import DeltaSession
from pipes_workers.load import run_load

KEY_COL = 'Order "ID"; x'
STAMP_COL = "changed at; --"


@pytest.mark.parametrize("strategy", ["incremental", "append_only", "check_and_load"])
def test_quoted_identifiers(source: SourceDB, lake_root: Path, strategy: str) -> None:
    schema = None
    table = f'Odd "Tab" {uuid.uuid4().hex[:6]}; DROP TABLE x'
    if source.db_type == "postgresql":
        schema = f'sch "{uuid.uuid4().hex[:6]}"; x'
        source.execute(f"CREATE SCHEMA {source.quote(schema)}")
    name = f"{source.quote(schema)}.{source.quote(table)}" if schema else source.quote(table)
    stamp_type = "timestamptz" if source.db_type == "postgresql" else "datetime(6)"
    source.execute(
        f"CREATE TABLE {name} ({source.quote(KEY_COL)} int PRIMARY KEY, {source.quote(STAMP_COL)} {stamp_type})"
    )
    insert = f"INSERT INTO {name} VALUES (%s, %s)"
    source.execute(insert, (1, source.ts(datetime(2024, 1, 1, tzinfo=UTC))))
    request = source.request(
        table,
        strategy,
        lake_root,
        source_schema=schema,
        destination_table=f"bronze/odd/t_{strategy}",
        primary_keys=(KEY_COL,),
        incremental_column=STAMP_COL,
    )
    request = after_success(request, run_load(request))
    source.execute(insert, (2, source.ts(datetime(2024, 1, 2, tzinfo=UTC))))
    second = run_load(request)
    assert second.rows_read == 1
    assert sorted(destination_rows_by(request, KEY_COL)) == [1, 2]


def destination_rows_by(request: LoadRequest, column: str) -> list[int]:
    data = DeltaSession(table_uri(request.lake_root, request.destination_table)).read_arrow()
    return data.column(column).to_pylist()


def test_new_source_column_is_added(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 3)))
    request = pg_source.request(table, "incremental", lake_root)
    request = after_success(request, run_load(request))
    pg_source.execute(f"ALTER TABLE {pg_source.quote(table)} ADD COLUMN note text")
    pg_source.insert(table, make_rows(range(3, 4), base=datetime(2025, 1, 1, tzinfo=UTC)))
    pg_source.execute(f"UPDATE {pg_source.quote(table)} SET note = 'new' WHERE id = 3")
    run_load(request)
    assert [r["note"] for r in destination_rows(request)] == [None, None, "new"]


def test_incompatible_type_change_fails_the_load(pg_source: SourceDB, lake_root: Path) -> None:
    table = pg_source.events_table()
    pg_source.insert(table, make_rows(range(1, 3)))
    request = pg_source.request(table, "incremental", lake_root)
    request = after_success(request, run_load(request))
    pg_source.execute(f"ALTER TABLE {pg_source.quote(table)} ALTER COLUMN amount TYPE text")
    pg_source.insert(table, [(3, "x", "lots", datetime(2025, 1, 1, tzinfo=UTC), None)])
    with pytest.raises(SchemaConflictError, match=r"column 'amount'"):
        run_load(request)
