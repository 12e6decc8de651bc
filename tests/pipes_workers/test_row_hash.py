"""The row fingerprint that tells a changed row from an unchanged re-read (lake/row_hash.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa

from pipes_workers.lake.row_hash import row_hashes


def hashes(table: pa.Table) -> list[str]:
    return row_hashes(table, table.column_names).to_pylist()


def test_equal_rows_hash_equal_whatever_the_column_order() -> None:
    table = pa.table(
        {
            "id": [1, 2],
            "name": ["a", None],
            "amount": pa.array([Decimal("1.50"), None], pa.decimal128(12, 2)),
            "at": pa.array([datetime(2024, 1, 1, tzinfo=UTC)] * 2, pa.timestamp("us", tz="UTC")),
            "raw": pa.array([b"\xff\x00", None]),  # not UTF-8: hashed through repr
            "tags": pa.array([[1, 2], None]),
        }
    )
    assert hashes(table) == hashes(table.select(list(reversed(table.column_names))))
    assert len(set(hashes(table))) == 2 and all(len(h) == 32 for h in hashes(table))


def test_a_changed_value_or_a_moved_separator_changes_the_hash() -> None:
    base = hashes(pa.table({"a": ["x|y"], "b": ["z"]}))
    assert hashes(pa.table({"a": ["x"], "b": ["y|z"]})) != base
    assert hashes(pa.table({"a": ["x|y"], "b": ["Z"]})) != base
    assert hashes(pa.table({"a": ["x|y"], "b": [None]})) != base
    assert hashes(pa.table({"a": [""], "b": ["z"]})) != hashes(pa.table({"a": [None], "b": ["z"]}))


def test_a_new_column_that_is_null_changes_no_hash() -> None:
    before = hashes(pa.table({"id": [1, 2], "v": ["a", "b"]}))
    after = pa.table({"id": [1, 2], "v": ["a", "b"], "added": pa.nulls(2, pa.int64())})
    assert hashes(after) == before
    assert hashes(pa.table({"id": [1, 2], "v": ["a", "b"], "added": [None, 7]}))[1] != before[1]
