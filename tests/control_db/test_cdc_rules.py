"""load_strategy cdc (migration 0010): accepted with primary_keys and any delete_mode, refused without
keys, and the unknown-strategy message lists it."""

from __future__ import annotations

import psycopg
import pytest
from control_rows import AddTable, insert_table

from control_db import queries as q


def test_cdc_rows_with_keys_are_accepted(control_conn: psycopg.Connection, add_table: AddTable) -> None:
    for mode in ("none", "soft", "hard"):
        add_table(f"erp.public.cdc_{mode}", load_strategy="cdc", primary_keys=["id"], delete_mode=mode)
    row = q.get_control_row(control_conn, "erp.public.cdc_soft")
    assert row is not None and (row.load_strategy, row.delete_mode) == ("cdc", "soft")


@pytest.mark.parametrize("keys", [None, [], [""]])
def test_cdc_without_keys_is_refused(control_conn: psycopg.Connection, keys: list[str] | None) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as refused:
        insert_table(control_conn, "erp.public.cdc", load_strategy="cdc", primary_keys=keys)
    message = refused.value.diag.message_primary or ""
    assert message.startswith("table_control.primary_keys: required"), message
    assert "load_strategy cdc" in message


def test_unknown_strategy_names_cdc(control_conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation, match="chunked_backfill, cdc"):
        insert_table(control_conn, "erp.public.x", load_strategy="binlog", primary_keys=["id"])
