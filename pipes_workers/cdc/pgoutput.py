"""A decoder for the messages of PostgreSQL's built-in `pgoutput` plugin, protocol version 1.

Only what the cdc capture needs: Begin, Commit, Relation, Insert, Update, Delete and Truncate
(Origin and Type messages are read and ignored). Column values stay text — the plugin sends each
value through its type's output function in the decoding session — or None (SQL NULL) or UNCHANGED
(an unchanged TOASTed value the message does not carry).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

UNCHANGED = object()  # 'u': an unchanged TOASTed value, not sent
POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # protocol timestamps: microseconds since then


@dataclass(frozen=True)
class Relation:
    """A table as a Relation message describes it: columns in order, which of them form the key."""

    relid: int
    schema: str
    name: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]


@dataclass(frozen=True)
class Message:
    """One decoded message. `tag`: B, C, R, I, U, D, T (or O, Y, ignored)."""

    tag: str
    relid: int | None = None
    new: tuple[Any, ...] | None = None  # I, U: the new tuple
    old: tuple[Any, ...] | None = None  # U, D: the old tuple ('O') or its key columns ('K')
    old_is_key: bool = False
    relation: Relation | None = None  # R
    relids: tuple[int, ...] = field(default_factory=tuple)  # T
    lsn: int | None = None  # C: the end of the commit record
    committed_at: datetime | None = None  # C: the transaction's commit time (UTC)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        value = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value[0] if len(value) == 1 else value

    def byte(self) -> str:
        self.at += 1
        return chr(self.data[self.at - 1])

    def string(self) -> str:
        end = self.data.index(b"\0", self.at)
        text = self.data[self.at : end].decode("utf-8")
        self.at = end + 1
        return text

    def tuple_data(self) -> tuple[Any, ...]:
        values: list[Any] = []
        for _ in range(self.take("!h")):
            kind = self.byte()
            if kind == "n":
                values.append(None)
            elif kind == "u":
                values.append(UNCHANGED)
            elif kind in ("t", "b"):
                size = self.take("!i")
                raw = self.data[self.at : self.at + size]
                self.at += size
                values.append(raw.decode("utf-8") if kind == "t" else raw)
            else:
                raise ValueError(f"pgoutput: unknown tuple value kind {kind!r}")
        return tuple(values)


def decode(data: bytes) -> Message:
    """One pgoutput message (the `data` of a pg_logical_slot_*_binary_changes row)."""
    reader = _Reader(bytes(data))
    tag = reader.byte()
    if tag == "C":
        _flags, _commit_lsn, end_lsn, micros = reader.take("!bqqq")
        return Message(tag, lsn=end_lsn, committed_at=POSTGRES_EPOCH + timedelta(microseconds=micros))
    if tag == "R":
        return Message(tag, relation=_relation(reader))
    if tag == "I":
        relid = reader.take("!i")
        reader.byte()  # 'N'
        return Message(tag, relid=relid, new=reader.tuple_data())
    if tag == "U":
        relid = reader.take("!i")
        kind = reader.byte()
        old = None
        if kind in ("K", "O"):
            old = reader.tuple_data()
            reader.byte()  # 'N'
        return Message(tag, relid=relid, new=reader.tuple_data(), old=old, old_is_key=kind == "K")
    if tag == "D":
        relid = reader.take("!i")
        kind = reader.byte()
        return Message(tag, relid=relid, old=reader.tuple_data(), old_is_key=kind == "K")
    if tag == "T":
        count = reader.take("!i")
        reader.byte()  # options: CASCADE / RESTART IDENTITY
        return Message(tag, relids=tuple(reader.take("!i") for _ in range(count)))
    return Message(tag)  # B (Begin), O (Origin), Y (Type), M (logical message): nothing to apply


def _relation(reader: _Reader) -> Relation:
    relid = reader.take("!i")
    schema, name = reader.string(), reader.string()
    reader.byte()  # replica identity setting
    columns, keys = [], []
    for _ in range(reader.take("!h")):
        flags = reader.take("!b")
        column = reader.string()
        reader.take("!ii")  # type oid, type modifier: the catalog's types are the ones used
        columns.append(column)
        if flags & 1:
            keys.append(column)
    return Relation(relid, schema or "pg_catalog", name, tuple(columns), tuple(keys))


def row(relation: Relation, values: tuple[Any, ...]) -> tuple[dict[str, Any], frozenset[str]]:
    """A tuple as {column: text or None} and the set of columns it left out (unchanged TOAST)."""
    present, unchanged = {}, set()
    for name, value in zip(relation.columns, values, strict=False):
        if value is UNCHANGED:
            unchanged.add(name)
        else:
            present[name] = value
    return present, frozenset(unchanged)
