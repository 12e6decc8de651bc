"""partition_by / schema_policy: refused at INSERT/UPDATE naming table, column and rule; carried into
the load request."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from control_rows import INCREMENTAL, AddTable, insert_table

from control_db import queries as q
from dataloader_contract.request import LoadRequest

KEY = "erp.public.events"

BAD_LAYOUT_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown schema_policy", {"schema_policy": "relaxed"}, "schema_policy", "must be one of evolve, freeze"),
    ("null schema_policy", {"schema_policy": None}, "schema_policy", "must be one of evolve, freeze"),
    ("empty partition entry", {"partition_by": ["region", ""]}, "partition_by", "empty or NULL entry"),
    ("null partition entry", {"partition_by": [None]}, "partition_by", "empty or NULL entry"),
    ("unknown function", {"partition_by": ["week(created_at)"]}, "partition_by", "neither a column name nor"),
    ("function without column", {"partition_by": ["month( )"]}, "partition_by", "names no column"),
    ("listed twice", {"partition_by": ["month(ts)", "MONTH(ts)"]}, "partition_by", "twice"),
    ("too many", {"partition_by": ["a", "b", "c", "d", "e"]}, "partition_by", "at most 4 partition columns"),
]


@pytest.mark.parametrize(
    ("overrides", "column", "rule"),
    [case[1:] for case in BAD_LAYOUT_ROWS],
    ids=[case[0] for case in BAD_LAYOUT_ROWS],
)
def test_bad_layout_settings_are_refused_on_insert(
    control_conn: psycopg.Connection, overrides: dict[str, Any], column: str, rule: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_table(control_conn, KEY, **INCREMENTAL, **overrides)
    message = refused.value.diag.message_primary or ""
    assert message.startswith(f"table_control.{column}: "), message
    assert rule in message
    assert refused.value.diag.column_name == column


def test_bad_update_is_refused(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    add_table(KEY, **INCREMENTAL)
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.schema_policy: "):
        control_conn.execute("UPDATE dataloader.table_control SET schema_policy = 'strict'")
    with pytest.raises(psycopg.errors.CheckViolation, match=r"^table_control\.partition_by: "):
        control_conn.execute("UPDATE dataloader.table_control SET partition_by = '{\"year(\"}'")


def test_good_layout_settings_reach_the_load_request(
    control_conn: psycopg.Connection, add_table: AddTable
) -> None:
    add_table("erp.public.a", **INCREMENTAL)
    add_table(
        "erp.public.b",
        **INCREMENTAL,
        partition_by=["Region Name", "region name", "month(created at)"],
        schema_policy="discard_new",
    )
    a, b = (q.get_control_row(control_conn, key) for key in ("erp.public.a", "erp.public.b"))
    assert a is not None and b is not None
    assert (a.partition_by, a.schema_policy) == (None, "evolve")
    source = q.get_source_config(control_conn, b.db_config_key)
    request = LoadRequest.from_control_row(b, source, lake_root="/lake", run_id="r")
    assert request.partition_by == ("Region Name", "region name", "month(created at)")
    assert request.schema_policy == "discard_new"
    assert LoadRequest.from_dict(request.to_dict()) == request
