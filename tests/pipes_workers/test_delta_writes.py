"""delta.py on Arrow tables: commit markers read back, write modes, schema drift, the re-apply guard."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from dataloader_contract.errors import SchemaConflictError, TransientLoadError
from dataloader_contract.request import table_uri
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.schema_conform import quote_column
from pipes_workers.lake.session import DeltaSession

KEY = "erp.public.orders"
ODD = 'we"ird; name'


def batches(**columns: list) -> pa.RecordBatchReader:
    return pa.table(columns).to_reader()


def marker(version: int, watermark: str | None = None, chunk: dict | None = None) -> CommitMarker:
    return CommitMarker(
        control_key=KEY,
        txn_version=version,
        strategy="incremental",
        run_id="r1",
        watermark=watermark,
        chunk=chunk,
    )


def rows(dest: DeltaSession) -> list[dict]:
    return dest.read_arrow().sort_by("id").to_pylist()


@pytest.fixture
def dest(lake_root: Path) -> DeltaSession:
    return DeltaSession(table_uri(lake_root, "bronze/erp/orders"))


def test_state_of_a_missing_table(dest: DeltaSession) -> None:
    state = dest.state(KEY)
    assert not state.exists and state.txn_version is None and state.next_txn_version == 1


def test_commit_markers_are_read_back(dest: DeltaSession) -> None:
    out = dest.overwrite(
        batches(id=[1, 2], **{ODD: ["a", "b"]}), marker(1, "2024-01-01T00:00:00.000001+00:00")
    )
    assert out.delta_version == 0 and out.bytes_written > 0
    dest.append(batches(id=[3], **{ODD: ["c"]}), marker(2, "w2", chunk={"index": 1, "total": 3}))
    state = dest.state(KEY)
    assert state.version == 1 and state.txn_version == 2 and state.next_txn_version == 3
    assert state.last_watermark == "w2" and state.last_chunk == {"index": 1, "total": 3}
    assert state.last_strategy == "incremental"
    assert dest.state("other.key").txn_version is None


def test_merge_upserts_on_odd_keys(dest: DeltaSession) -> None:
    dest.overwrite(batches(**{ODD: [1, 2, 3], "v": ["a", "b", "c"]}), marker(1))
    dest.merge(batches(**{ODD: [2, 4], "v": ["B", "d"]}), [ODD], marker(2))
    data = dest.read_arrow().sort_by(ODD).to_pylist()
    assert data == [{ODD: 1, "v": "a"}, {ODD: 2, "v": "B"}, {ODD: 3, "v": "c"}, {ODD: 4, "v": "d"}]


def test_merge_can_delete_rows_missing_from_the_source(dest: DeltaSession) -> None:
    dest.overwrite(batches(id=[1, 2, 3], v=["a", "b", "c"]), marker(1))
    dest.merge(batches(id=[2, 4], v=["B", "d"]), ["id"], marker(2), delete_not_in_source=True)
    assert rows(dest) == [{"id": 2, "v": "B"}, {"id": 4, "v": "d"}]


def test_new_source_columns_are_added(dest: DeltaSession) -> None:
    dest.overwrite(batches(id=[1], v=["a"]), marker(1))
    dest.merge(batches(id=[1, 2], v=["a", "b"], extra=[10, 20]), ["id"], marker(2))
    dest.append(batches(id=[3], v=["c"], extra=[30], more=[True]), marker(3))
    assert rows(dest) == [
        {"id": 1, "v": "a", "extra": 10, "more": None},
        {"id": 2, "v": "b", "extra": 20, "more": None},
        {"id": 3, "v": "c", "extra": 30, "more": True},
    ]


def test_widening_casts_to_the_table_type(dest: DeltaSession) -> None:
    dest.overwrite(
        batches(id=pa.array([1], pa.int64()), amount=pa.array([Decimal("1.50")], pa.decimal128(12, 2))),
        marker(1),
    )
    dest.append(
        batches(id=pa.array([2], pa.int32()), amount=pa.array([Decimal("2.25")], pa.decimal128(10, 2))),
        marker(2),
    )
    assert [r["amount"] for r in rows(dest)] == [Decimal("1.50"), Decimal("2.25")]


def test_incompatible_type_change_names_table_and_column(dest: DeltaSession) -> None:
    dest.overwrite(batches(id=[1], amount=[1]), marker(1))
    with pytest.raises(SchemaConflictError, match=r"orders.*'amount'"):
        dest.merge(batches(id=[1], amount=["one"]), ["id"], marker(2))
    with pytest.raises(SchemaConflictError, match="'amount'"):
        dest.append(batches(id=[1], amount=[1.5]), marker(2))


def test_a_committed_version_is_never_reapplied(dest: DeltaSession) -> None:
    dest.overwrite(batches(id=[1]), marker(1))
    dest.append(batches(id=[2]), marker(2))
    with pytest.raises(TransientLoadError, match="already committed"):
        dest.append(batches(id=[2]), marker(2))
    assert [r["id"] for r in rows(dest)] == [1, 2]


def test_backtick_columns_are_refused_for_merge(dest: DeltaSession) -> None:
    dest.overwrite(batches(id=[1], **{"a`b": [1]}), marker(1))
    with pytest.raises(SchemaConflictError, match="backtick"):
        dest.merge(batches(id=[1], **{"a`b": [2]}), ["id"], marker(2))


def test_quote_column() -> None:
    assert quote_column("plain") == "`plain`"
    assert quote_column('a "b"; c') == '`a "b"; c`'


def test_merge_from_memory_scans_only_files_in_the_key_range(dest: DeltaSession) -> None:
    dest.overwrite(batches(id=list(range(0, 100)), v=["a"] * 100), marker(1))
    for version, low in ((2, 100), (3, 200)):
        dest.append(batches(id=list(range(low, low + 100)), v=["a"] * 100), marker(version))
    changes = pa.table({"id": [150, 151], "v": ["b", "b"]})

    in_memory = dest.merge(changes, ["id"], marker(4)).metrics
    assert in_memory["num_target_files_scanned"] == 1
    assert in_memory["num_target_files_skipped_during_scan"] == 2
    streamed = dest.merge(changes.to_reader(), ["id"], marker(5)).metrics
    assert streamed["num_target_files_scanned"] == 3

    data = rows(dest)
    assert len(data) == 300 and [r["v"] for r in data if r["id"] in (150, 151)] == ["b", "b"]
