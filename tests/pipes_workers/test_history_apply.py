"""apply_history on a real Delta table (no source): the entry a change-log strategy (cdc) calls with
one collapsed batch of upserts and deletes, each with its own change time; one commit each call."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from dataloader_contract.errors import ConfigurationError
from pipes_workers.lake.history import CHANGED_AT, IS_CURRENT, VALID_FROM, VALID_TO, apply_history
from pipes_workers.lake.markers import CommitMarker
from pipes_workers.lake.session import DeltaSession

STAMP = pa.timestamp("us", tz="UTC")
T0, T1, T2, T3 = (datetime(2025, 1, day, tzinfo=UTC) for day in (1, 2, 3, 4))


def marker(version: int) -> CommitMarker:
    return CommitMarker(control_key="test.cdc", txn_version=version, strategy="incremental")


def rows(session: DeltaSession) -> list[tuple]:
    table = pa.table(session.require().to_pyarrow_table())
    ordered = table.sort_by([("id", "ascending"), (VALID_FROM, "ascending")])
    return [
        (r["id"], r["v"], r[VALID_FROM], r[VALID_TO], r[IS_CURRENT], r.get("w")) for r in ordered.to_pylist()
    ]


def test_upserts_and_deletes_with_their_own_times_land_in_one_commit(tmp_path: Path) -> None:
    session = DeltaSession(str(tmp_path / "t"), history=True)
    first = pa.table({"id": [1, 2, 3], "v": ["a", "b", "c"], CHANGED_AT: pa.array([T0] * 3, STAMP)})
    apply_history(session, first, ["id"], marker(1), changed_at=T3, valid_from_column=CHANGED_AT)
    assert session.require().version() == 0

    upserts = pa.table(
        {
            "id": [1, 2, 4],
            "v": ["a2", "b", "d"],
            "w": [10, None, 40],
            CHANGED_AT: pa.array([T1, T1, T2], STAMP),
        }
    )
    deletes = pa.table({"id": [3], CHANGED_AT: pa.array([T2], STAMP)})
    outcome = apply_history(
        session, upserts, ["id"], marker(2), changed_at=T3, valid_from_column=CHANGED_AT, deletes=deletes
    )
    assert outcome.delta_version == 1  # one commit for the whole batch
    assert outcome.metrics["versions_added"] == 2 and outcome.metrics["versions_closed"] == 2
    assert rows(session) == [
        (1, "a", T0, T1, False, 10),  # delta-rs fills a new column on the rows the MERGE touched
        (1, "a2", T1, None, True, 10),
        (2, "b", T0, None, True, None),  # unchanged (a new column that is NULL is no change)
        (3, "c", T0, T2, False, None),
        (4, "d", T2, None, True, 40),
    ]
    assert CHANGED_AT not in session.require().schema().to_arrow().names  # type: ignore[attr-defined]


def test_the_same_app_transaction_is_never_applied_twice(tmp_path: Path) -> None:
    session = DeltaSession(str(tmp_path / "t"), history=True)
    first = pa.table({"id": [1], "v": ["a"]})
    apply_history(session, first, ["id"], marker(1), changed_at=T0)
    apply_history(session, pa.table({"id": [1], "v": ["b"]}), ["id"], marker(2), changed_at=T1)
    with pytest.raises(Exception, match="already committed"):
        apply_history(session, pa.table({"id": [1], "v": ["c"]}), ["id"], marker(2), changed_at=T2)
    assert [r[1] for r in rows(session)] == ["a", "b"]


def test_a_table_without_history_is_refused_unless_replaced(tmp_path: Path) -> None:
    plain = DeltaSession(str(tmp_path / "t"))
    plain.overwrite(pa.table({"id": [1], "v": ["a"]}), marker(1))
    session = DeltaSession(str(tmp_path / "t"), history=True)
    with pytest.raises(ConfigurationError, match="set load_full"):
        apply_history(session, pa.table({"id": [1], "v": ["b"]}), ["id"], marker(2), changed_at=T1)
    apply_history(session, pa.table({"id": [1], "v": ["b"]}), ["id"], marker(2), changed_at=T1, replace=True)
    assert rows(session) == [(1, "b", T1, None, True, None)]
