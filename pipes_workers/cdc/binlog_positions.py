"""MySQL/MariaDB binlog positions as the cdc strategy stores them, and distances between them.

A position is `<binlog file>:<offset>:<row>`, e.g. `mysql-bin.000003:1234:2`:
- `<binlog file>:<offset>` is a transaction boundary in the binlog (the end of a commit, the start of a
  file, or the snapshot's `binlog_snapshot_file/position`), where reading can start again: the
  transactions that follow carry their own table-map events, so their rows decode from there;
- `<row>` counts the changes of the captured table read after that boundary (0: none yet). Reading
  resumes at the boundary and skips that many changes, so a load may stop in the middle of a large
  transaction and the next one goes on from the next row, each change exactly once.
`file:offset` alone (what SHOW MASTER STATUS prints) is accepted and means row 0.

Positions order by (file sequence number, offset, row): binlog files are numbered in the order the
server writes them (the basename's numeric extension), and offsets grow within a file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class BinlogPosition:
    """A parsed position; orders as the log does (file sequence, offset, row)."""

    sequence: int
    offset: int
    row: int
    file: str

    def text(self) -> str:
        """The position as stored: `file:offset:row`."""
        return f"{self.file}:{self.offset}:{self.row}"

    def with_row(self, row: int) -> BinlogPosition:
        """The same boundary with another row count."""
        return BinlogPosition(self.sequence, self.offset, row, self.file)


def file_sequence(file: str) -> int:
    """The numeric extension of a binlog file name (`mysql-bin.000003` -> 3); ValueError otherwise."""
    stem, dot, number = file.rpartition(".")
    if not dot or not stem or not number.isdigit():
        raise ValueError(f"not a binlog file name: {file!r}")
    return int(number)


def at(file: str, offset: int, row: int = 0) -> BinlogPosition:
    """The position `file:offset:row`."""
    return BinlogPosition(file_sequence(file), int(offset), int(row), file)


def parse_position(position: str) -> BinlogPosition:
    """`file:offset[:row]` parsed; ValueError naming the text when it is not one."""
    parts = position.strip().rsplit(":", 2)
    if len(parts) == 3 and not parts[1].isdigit():  # a file name with a colon and no row
        parts = [f"{parts[0]}:{parts[1]}", parts[2]]
    if len(parts) == 2:
        parts.append("0")
    file, offset, row = parts
    if not (offset.isdigit() and row.isdigit()):
        raise ValueError(f"not a binlog position (file:offset[:row]): {position!r}")
    return at(file, int(offset), int(row))


def position_key(position: str) -> tuple[int, ...]:
    """The sort key of a position: (file sequence, offset, row)."""
    p = parse_position(position)
    return (p.sequence, p.offset, p.row)


@dataclass(frozen=True)
class BinaryLog:
    """One row of SHOW BINARY LOGS."""

    file: str
    size: int


def binary_logs(rows: Sequence[Sequence[object]]) -> list[BinaryLog]:
    """SHOW BINARY LOGS rows (Log_name, File_size, ...) as BinaryLogs, in file order."""
    logs = [BinaryLog(_text(row[0]), int(row[1])) for row in rows]  # type: ignore[call-overload]
    return sorted(logs, key=lambda log: file_sequence(log.file))


def holds(logs: Sequence[BinaryLog], position: BinlogPosition) -> bool:
    """Whether the server still has the binlog from `position` on: its file is listed (not purged) and
    the offset lies within it."""
    found = next((log for log in logs if log.file == position.file), None)
    return found is not None and position.offset <= found.size


def distance(logs: Sequence[BinaryLog], position: BinlogPosition) -> int | None:
    """Bytes of binlog from `position` to the head (the end of the newest file), summed across files;
    None when the position's file is no longer listed."""
    if not holds(logs, position):
        return None
    total = 0
    for log in logs:
        if log.file == position.file:
            total += log.size - position.offset
        elif file_sequence(log.file) > position.sequence:
            total += log.size
    return total


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)
