"""The cdc pieces that need no server: collapsing a batch, array text, pgoutput tuples, slot names,
LSNs, the lag verdict and its metadata."""

from __future__ import annotations

import struct
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from dataloader_contract.errors import PermanentLoadError
from dataloader_contract.result import LoadResult
from pipes_workers.cdc import pgoutput
from pipes_workers.cdc.apply import collapse
from pipes_workers.cdc.capture import Change
from pipes_workers.cdc.lag import lag_verdict
from pipes_workers.cdc.pg_slots import lsn_int, lsn_text, slot_name
from pipes_workers.cdc.pg_text import parse_array, text_array
from pipes_workers.metadata import materialization_metadata


def change(
    op: str, key: int, position: str = "0/1", unchanged: frozenset[str] = frozenset(), **values: str
) -> Change:
    return Change(op, position, {"id": str(key), **values}, unchanged)  # type: ignore[arg-type]


def test_collapse_keeps_each_keys_last_change_and_fills_unchanged_toast_from_the_batch() -> None:
    log: list[str] = []
    batch = collapse(
        [
            change("insert", 1, big="x" * 3000, name="a"),
            change("update", 1, name="b", unchanged=frozenset({"big"})),
            change("update", 2, name="c", unchanged=frozenset({"big"})),
            change("insert", 3, name="d"),
            change("delete", 3),
        ],
        ("id",),
        "hard",
        log.append,
    )
    by_key = {c.values["id"]: c for c in batch.changes}
    assert by_key["1"].values["big"] == "x" * 3000 and not by_key["1"].unchanged
    assert by_key["2"].unchanged == {"big"}  # nothing earlier in the batch: Delta's value stays
    assert by_key["3"].op == "delete" and (batch.upserts, batch.deletes) == (2, 1)


def test_collapse_under_none_ignores_deletes_and_truncates() -> None:
    log: list[str] = []
    truncate = Change("truncate", "0/2", {})
    batch = collapse(
        [change("insert", 1, name="a"), truncate, change("delete", 1)], ("id",), "none", log.append
    )
    assert [c.op for c in batch.changes] == ["insert"] and not batch.truncated
    assert any("ignored" in line for line in log)
    hard = collapse([change("insert", 1), truncate, change("insert", 2)], ("id",), "hard", log.append)
    assert [c.values["id"] for c in hard.changes] == ["2"] and hard.truncated


def test_array_text() -> None:
    assert parse_array('{1,NULL,"NULL","a,\\"b"}', column="c", table="t") == ["1", None, "NULL", 'a,"b']
    assert parse_array("{}", column="c", table="t") == []
    with pytest.raises(PermanentLoadError, match="multi-dimensional"):
        parse_array("{{1,2},{3,4}}", column="c", table="t")
    with pytest.raises(PermanentLoadError, match="'flag'.*not a boolean"):
        text_array(["t", "yes"], pa.bool_(), column="flag", table="t")


def test_pgoutput_insert_with_null_and_unchanged_values() -> None:
    relation = struct.pack("!cib", b"R", 7, 0)[:5] + b"public\0items\0" + struct.pack("!bh", 100, 3)
    for flags, name in ((1, b"id"), (0, b"big"), (0, b"note")):
        relation += struct.pack("!b", flags) + name + b"\0" + struct.pack("!ii", 25, -1)
    decoded = pgoutput.decode(relation).relation
    assert decoded is not None and decoded.columns == ("id", "big", "note") and decoded.key_columns == ("id",)
    update = b"U" + struct.pack("!i", 7) + b"N" + struct.pack("!h", 3) + b"t" + struct.pack("!i", 1) + b"5un"
    message = pgoutput.decode(update)
    values, unchanged = pgoutput.row(decoded, message.new or ())
    assert values == {"id": "5", "note": None} and unchanged == {"big"}


def test_pgoutput_commit_carries_its_time_and_collapse_keeps_it() -> None:
    micros = 789_000_000_000_123  # since 2000-01-01 UTC
    message = pgoutput.decode(b"C" + struct.pack("!bqqq", 0, 16, 32, micros))
    assert message.lsn == 32
    assert message.committed_at == datetime(2024, 12, 31, 22, 40, 0, 123, tzinfo=UTC)
    first = Change("update", "0/1", {"id": "1", "big": "x"}, committed_at=datetime(2025, 1, 1, tzinfo=UTC))
    moment = datetime(2025, 1, 2, tzinfo=UTC)
    later = Change("update", "0/2", {"id": "1"}, frozenset({"big"}), committed_at=moment)
    (last,) = collapse([first, later], ["id"], "hard", print).changes
    assert (last.values["big"], last.unchanged, last.committed_at) == ("x", frozenset(), moment)


def test_slot_names_and_lsns() -> None:
    name = slot_name("ERP.Public." + "Very Long Table Name " * 5)
    assert len(name) <= 63 and name.startswith("dataloader_erp_public_very") and name == name.lower()
    assert slot_name("a.b") != slot_name("a_b")  # the hash tells apart what sanitising merges
    assert (
        lsn_int("16/B374D848") == (0x16 << 32) | 0xB374D848
        and lsn_text(lsn_int("16/B374D848")) == "16/B374D848"
    )


def test_lag_verdict_and_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATALOADER_CDC_LAG_WARN_BYTES", "100")
    monkeypatch.setenv("DATALOADER_CDC_LAG_ERROR_BYTES", "1000")
    assert lag_verdict(50)[:2] == (True, "WARN")
    assert lag_verdict(500)[:2] == (False, "WARN")
    assert lag_verdict(5000)[:2] == (False, "ERROR")
    assert lag_verdict(None)[:2] == (False, "WARN")
    meta = materialization_metadata(LoadResult("k", "cdc", cdc_lag_bytes=500), source_table="t")
    assert meta["cdc_lag_bytes"] == {"raw_value": 500, "type": "int"}
