"""KeyOrder: primary-key uniqueness proven from strictly increasing keys in a stream, or abandoned."""

from __future__ import annotations

import pyarrow as pa

from pipes_workers.lake.key_order import KeyOrder, strictly_increasing


def batch(**columns: list) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(columns)


def observed(keys: tuple[str, ...], *batches: pa.RecordBatch) -> KeyOrder:
    order = KeyOrder(keys)
    for b in batches:
        order.observe(b)
    return order


def test_increasing_keys_across_batches_are_proven_unique() -> None:
    order = observed(("id",), batch(id=[1, 2, 5]), batch(id=[6]), batch(id=[]), batch(id=[7, 9]))
    assert order.proven and order.rows == 6


def test_a_repeated_key_abandons_the_proof_inside_and_across_batches() -> None:
    assert not observed(("id",), batch(id=[1, 2, 2, 3])).proven
    assert not observed(("id",), batch(id=[1, 2]), batch(id=[2, 3])).proven


def test_out_of_order_null_and_nan_keys_abandon_the_proof() -> None:
    assert not observed(("id",), batch(id=[1, 3, 2, 4])).proven
    assert not observed(("id",), batch(id=[2, 1, 3, 0])).proven
    assert not observed(("id",), batch(id=[1, None, 3])).proven
    assert not observed(("id",), batch(id=[1.0, float("nan"), 3.0])).proven


def test_composite_keys_compare_lexicographically() -> None:
    ok = observed(("a", "b"), batch(a=["x", "x", "y"], b=[2, 3, 1]), batch(a=["y"], b=[2]))
    assert ok.proven
    assert not observed(("a", "b"), batch(a=["x", "x"], b=[3, 3])).proven
    assert not observed(("a", "b"), batch(a=["x", "y"], b=[1, 1]), batch(a=["y"], b=[1])).proven


def test_no_keys_or_a_missing_key_column_proves_nothing() -> None:
    assert not KeyOrder(()).proven
    assert not observed(("nope",), batch(id=[1, 2])).proven


def test_strictly_increasing_row_by_row() -> None:
    assert strictly_increasing([pa.array([1, 5])], [pa.array([2, 6])])
    assert not strictly_increasing([pa.array([1, 5])], [pa.array([2, 5])])
    assert strictly_increasing([pa.array([], pa.int64())], [pa.array([], pa.int64())])


def test_one_wrap_around_below_the_first_key_is_still_unique() -> None:
    """A synchronised scan: rows 5..9 then 1..4, inside a batch or across batches."""
    assert observed(("id",), batch(id=[5, 6, 7, 8, 9, 1, 2, 3, 4])).proven
    assert observed(("id",), batch(id=[5, 6, 7]), batch(id=[8, 9]), batch(id=[1, 2])).proven
    assert not observed(("id",), batch(id=[5, 6, 7, 1, 5])).proven  # second run reaches the first key
    assert not observed(("id",), batch(id=[5, 6]), batch(id=[1, 2]), batch(id=[7, 1])).proven  # two wraps
    assert not observed(("id",), batch(id=[5, 6, 9]), batch(id=[2, 7])).proven
