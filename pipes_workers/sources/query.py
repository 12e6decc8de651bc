"""SELECT / WHERE text built from quoted identifiers and rendered literals, shared by the SQL readers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dataloader_contract.errors import ConfigurationError
from pipes_workers.sources.base import Aggregate, RowFilter

Quote = Callable[[str], str]
Render = Callable[[Any], str]

_OPS = frozenset({">", ">=", "<", "<=", "="})


def quote_with(name: str, quote_char: str) -> str:
    """`name` between `quote_char`s with embedded ones doubled; NUL refused (no dialect allows it)."""
    if "\x00" in name:
        raise ConfigurationError("identifier contains a NUL character")
    return quote_char + name.replace(quote_char, quote_char * 2) + quote_char


def qualified_name(quote: Quote, schema: str | None, table: str) -> str:
    """`"schema"."table"` (or just the table when schema is None)."""
    return f"{quote(schema)}.{quote(table)}" if schema else quote(table)


def where_clause(row_filter: RowFilter | None, quote: Quote, render: Render) -> str:
    """` WHERE …` for the filter (empty string when it matches every row)."""
    if row_filter is None or not row_filter.conditions:
        return ""
    parts = []
    for cond in row_filter.conditions:
        if cond.op not in _OPS:
            raise ConfigurationError(f"unsupported comparison operator {cond.op!r} on column {cond.column!r}")
        if cond.value is None:
            raise ConfigurationError(f"filter on column {cond.column!r} compares with NULL")
        parts.append(f"{quote(cond.column)} {cond.op} {render(cond.value)}")
    text = " AND ".join(parts)
    if row_filter.or_null_column:
        text = f"({text}) OR {quote(row_filter.or_null_column)} IS NULL"
    return f" WHERE {text}"


def aggregate_list(aggregates: Sequence[Aggregate], quote: Quote) -> str:
    """`min("a"), count(*)` for the aggregates."""
    if not aggregates:
        raise ConfigurationError("aggregate() needs at least one aggregate")
    items = []
    for agg in aggregates:
        if agg.fn == "count":
            items.append(f"count({quote(agg.column)})" if agg.column else "count(*)")
        elif agg.fn in ("min", "max"):
            if not agg.column:
                raise ConfigurationError(f"aggregate {agg.fn} needs a column")
            items.append(f"{agg.fn}({quote(agg.column)})")
        else:
            raise ConfigurationError(f"unsupported aggregate {agg.fn!r}")
    return ", ".join(items)
