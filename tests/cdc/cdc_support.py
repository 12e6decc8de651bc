"""cdc test support: a source table with many PostgreSQL types, and the comparison of a cdc table
with a `full` load of the same source rows (the reader's own type map) and with the source."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from loadtest_support import PostgresSource, destination_rows

from dataloader_contract.request import LoadRequest
from pipes_workers.load import run_load

COLUMNS = (
    "id bigint PRIMARY KEY, name text, amount numeric(12,2), total numeric, updated_at timestamptz, "
    "stamp timestamp, event_date date, flag boolean, doc jsonb, blob bytea, tags text[], nums int[], "
    "ratio float8, small real, code char(4), moment time, span interval, uid uuid, stamps timestamptz[], "
    "big text"
)


def typed_table(source: PostgresSource) -> str:
    """A table of the types the comparison covers; `big` is stored out of line uncompressed (TOAST)."""
    name = f"cdc_{uuid.uuid4().hex[:8]}"
    source.execute(f"CREATE TABLE {name} ({COLUMNS})")
    source.execute(f"ALTER TABLE {name} ALTER COLUMN big SET STORAGE EXTERNAL")
    return name


def insert(source: PostgresSource, table: str, ids: range, *, big: bool = False) -> None:
    """Rows with every column set (and a >2 kB `big` value when asked)."""
    for i in ids:
        source.execute(
            f"INSERT INTO {table} VALUES (%s, %s, %s, %s, now() - make_interval(secs => %s), "
            "'2024-02-29 23:59:59.999999', DATE '2024-01-01' + %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s, "
            "make_time(%s %% 24, 30, 1.5), make_interval(days => %s, secs => 0.25), md5(%s::text)::uuid, "
            "ARRAY[now(), NULL, '1999-12-31 23:59:59.5+02'::timestamptz], "
            "CASE WHEN %s THEN (SELECT string_agg(md5(g::text || %s), '') FROM generate_series(1, 100) g) END)",
            (
                i, f"name {i} ' \" \\ é", f"{i}.25", f"{i}.000000001", i, i, i % 2 == 0,
                f'{{"k": {i}, "s": "a\\nb"}}', bytes([i % 256, 0, 255]), ["a b", 'q"x', None, f"t{i}"],
                [i, None, -i], i / 3, 1.1 * i, f"c{i % 10}", i, i, i, big, str(i),
            ),
        )  # fmt: skip


def full_copy(request: LoadRequest) -> list[dict[str, Any]]:
    """The rows a `full` load of the same source table writes (into a destination of its own)."""
    full = dataclasses.replace(
        request,
        control_key=request.control_key + ".full",
        load_strategy="full",
        load_full=False,
        destination_table=request.destination_table + "_full",
        incremental_value=None,
        delete_mode="none",
    )
    run_load(full)
    return destination_rows(full)


def assert_equals_full_load(request: LoadRequest) -> list[dict[str, Any]]:
    """The cdc table holds exactly the rows a full load of the source holds now (values and types);
    the rows, for more checks."""
    cdc = destination_rows(request)
    ids = [r["id"] for r in cdc]
    assert len(ids) == len(set(ids)), "duplicate keys in the cdc table"
    full = full_copy(request)
    assert [r["id"] for r in cdc] == [r["id"] for r in full]
    for mine, theirs in zip(cdc, full, strict=True):
        mine = {k: v for k, v in mine.items() if not k.startswith("_dataloader")}
        differ = {k: (mine.get(k), theirs.get(k)) for k in {*mine, *theirs} if mine.get(k) != theirs.get(k)}
        assert not differ, f"row {mine['id']}: (cdc, full) {differ}"
    return cdc
