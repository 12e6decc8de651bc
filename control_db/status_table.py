"""Render `v_table_status` rows (or any view's row dataclasses) as an aligned text table for a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from datetime import datetime, timedelta

from control_db.queries.rows import SourceStatus, TableStatus

MAX_CELL = 60


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, timedelta):
        return str(value - timedelta(microseconds=value.microseconds))
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def render(rows: Sequence[object], row_type: type = TableStatus) -> str:
    """The rows (of dataclass `row_type`) under a header, columns padded to their widest cell."""
    header = [field.name for field in fields(row_type)]
    cells = [header, *([_cell(value) for value in astuple(row)] for row in rows)]  # type: ignore[call-overload]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass(frozen=True)
class CircuitLine:
    """What `dataloader status` prints about a source whose circuit breaker is not closed."""

    source: str
    circuit: str
    failures: int
    open_until: datetime | None
    probe: str | None
    reason: str | None


def circuit_line(source: SourceStatus) -> CircuitLine:
    """The status line of one `v_source_status` row."""
    return CircuitLine(
        source.db_config_key, source.circuit, source.failures, source.open_until,
        source.probe_control_key, source.reason,
    )  # fmt: skip
