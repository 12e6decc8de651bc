"""Render `v_table_status` rows as an aligned text table for a terminal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, fields
from datetime import datetime, timedelta

from control_db.queries.rows import TableStatus

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


def render(rows: Sequence[TableStatus]) -> str:
    """The rows under a header, columns padded to their widest cell."""
    header = [field.name for field in fields(TableStatus)]
    cells = [header, *([_cell(value) for value in astuple(row)] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
